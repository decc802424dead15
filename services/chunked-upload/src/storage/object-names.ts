import { assertBlobKey } from '@qlab/blob-store';

/**
 * A finished file's object key: `files/` and its path in the upload dir, each part made of what
 * blob keys take (letters, digits, `.`, `-`, `_`). Other bytes of the UTF-8 name become `_HH`
 * (upper-case hex), as does a leading `.` or `-`, and a `_` that would otherwise read as such an
 * escape, so distinct names never share a key: `my file.csv` → `my_20file.csv`,
 * `.env` → `_2Eenv`, `données` → `donn_C3_A9es`.
 */
export function objectKeyOf(relPath: string): string {
  const parts = relPath.split('/').map(encodePart);
  // A folder store keeps each part as a file name: at most 255 bytes on common file systems.
  const long = parts.find((p) => p.length > MAX_PART_BYTES);
  if (long)
    throw new RangeError(`a part of the name encodes to ${long.length} bytes, over ${MAX_PART_BYTES}`);
  const key = `files/${parts.join('/')}`;
  // Over 1024 bytes (S3's limit) or otherwise not a key: the caller refuses the name.
  assertBlobKey(key);
  return key;
}

const MAX_PART_BYTES = 255;

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
