import { assertBlobKey } from './blob-store';

/** Longest part of an encoded path: a folder store keeps each part as one file name. */
const MAX_PART_BYTES = 255;

/**
 * A relative path of any UTF-8 names as a blob key under `prefix`: each part keeps letters,
 * digits, `.`, `-` and `_`; other bytes become `_HH` (upper-case hex), as does a leading `.`
 * or `-`, and a `_` that would otherwise read as such an escape. Distinct paths never share a
 * key, and decodeKeyPath gives the path back: `my file.csv` → `my_20file.csv`, `.env` →
 * `_2Eenv`, `données` → `donn_C3_A9es`. Throws RangeError when the key cannot be stored
 * (over 1024 bytes, or a part over 255).
 */
export function encodeKeyPath(prefix: string, relPath: string): string {
  const parts = relPath.split('/').map(encodePart);
  const long = parts.find((p) => p.length > MAX_PART_BYTES);
  if (long)
    throw new RangeError(`a part of the name encodes to ${long.length} bytes, over ${MAX_PART_BYTES}`);
  const key = `${prefix}/${parts.join('/')}`;
  assertBlobKey(key);
  return key;
}

/** The path encodeKeyPath made `key` from (`key` without its `prefix/`). */
export function decodeKeyPath(prefix: string, key: string): string {
  if (!key.startsWith(`${prefix}/`)) throw new RangeError(`${key} is not under ${prefix}/`);
  return key
    .slice(prefix.length + 1)
    .split('/')
    .map((part) => {
      const bytes: number[] = [];
      for (let i = 0; i < part.length; i++) {
        const hex = part.slice(i + 1, i + 3);
        if (part[i] === '_' && /^[0-9A-F]{2}$/.test(hex)) {
          bytes.push(Number.parseInt(hex, 16));
          i += 2;
        } else bytes.push(part.charCodeAt(i));
      }
      return Buffer.from(bytes).toString('utf8');
    })
    .join('/');
}

function encodePart(part: string): string {
  const bytes = Buffer.from(part, 'utf8');
  let out = '';
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    const c = String.fromCharCode(b);
    const plain =
      /[A-Za-z0-9]/.test(c) ||
      ((c === '.' || c === '-') && i > 0) ||
      (c === '_' && !/^[0-9A-F]{2}$/.test(bytes.subarray(i + 1, i + 3).toString('latin1')));
    out += plain ? c : `_${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}
