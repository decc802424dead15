import { badRequest } from '@qlab/kit';

export const TUS_VERSION = '1.0.0';
export const TUS_EXTENSIONS = [
  'creation',
  'creation-with-upload',
  'termination',
  'checksum',
  'expiration',
  'concatenation',
];
export const CHECKSUM_ALGORITHMS = ['sha1', 'sha256', 'md5'];
export const TUS_EXPOSED_HEADERS = [
  'Upload-Offset',
  'Upload-Length',
  'Upload-Metadata',
  'Upload-Expires',
  'Upload-Concat',
  'Tus-Version',
  'Tus-Resumable',
  'Tus-Extension',
  'Tus-Max-Size',
  'Tus-Checksum-Algorithm',
];

/** A non-negative integer header, or undefined when absent; anything else is a 400. */
export function intHeader(value: string | string[] | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !/^\d{1,16}$/.test(value))
    throw badRequest(`${name} must be a non-negative integer`);
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw badRequest(`${name} is too large`);
  return n;
}

/**
 * Upload-Metadata: `key base64value` pairs separated by commas; keys unique, without spaces
 * or commas; values may be empty. Values must be valid base64 of UTF-8 text.
 */
export function parseMetadata(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (header === undefined || header.trim() === '') return out;
  if (header.length > 8192) throw badRequest('Upload-Metadata is longer than 8 KiB');
  for (const pair of header.split(',')) {
    const parts = pair.trim().split(' ');
    const [key, value = '', ...rest] = parts;
    if (!key || rest.length > 0 || !/^[\x21-\x7e]+$/.test(key))
      throw badRequest(`Upload-Metadata has a malformed pair "${pair.trim().slice(0, 40)}"`);
    if (key in out) throw badRequest(`Upload-Metadata repeats the key "${key}"`);
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(value) || value.length % 4 === 1)
      throw badRequest(`Upload-Metadata value of "${key}" is not base64`);
    try {
      out[key] = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(value, 'base64'));
    } catch {
      throw badRequest(`Upload-Metadata value of "${key}" is not UTF-8`);
    }
  }
  return out;
}

export function formatMetadata(metadata: Record<string, string>): string {
  return Object.entries(metadata)
    .map(([k, v]) => (v === '' ? k : `${k} ${Buffer.from(v, 'utf8').toString('base64')}`))
    .join(',');
}

export type ChecksumAlgorithm = 'sha1' | 'sha256' | 'md5';

/** Upload-Checksum: `<algorithm> <base64 digest>`. */
export function parseChecksum(
  header: string | undefined,
): { algorithm: ChecksumAlgorithm; digest: string } | undefined {
  if (header === undefined) return undefined;
  const m = /^([a-z0-9-]+) ([A-Za-z0-9+/]+={0,2})$/.exec(header.trim());
  if (!m) throw badRequest('Upload-Checksum must be "<algorithm> <base64 digest>"');
  const algorithm = m[1] as ChecksumAlgorithm;
  if (!CHECKSUM_ALGORITHMS.includes(algorithm))
    throw badRequest(`unsupported checksum algorithm "${m[1]}"; use ${CHECKSUM_ALGORITHMS.join(', ')}`);
  return { algorithm, digest: m[2]! };
}

/** Upload-Concat: `partial`, or `final;<url> <url> …` (upload ids are the last path segment). */
export function parseConcat(
  header: string | undefined,
): { kind: 'partial' } | { kind: 'final'; ids: string[] } | undefined {
  if (header === undefined) return undefined;
  if (header.trim() === 'partial') return { kind: 'partial' };
  const m = /^final;(.+)$/.exec(header.trim());
  if (!m) throw badRequest('Upload-Concat must be "partial" or "final;<urls>"');
  const ids = m[1]!
    .trim()
    .split(/\s+/)
    .map((url) => url.replace(/\/+$/, '').split('/').pop() ?? '');
  if (ids.length === 0 || ids.some((id) => !/^[0-9a-f]{32}$/.test(id)))
    throw badRequest('Upload-Concat lists an invalid upload URL');
  // One partial listed many times would be copied many times (disk amplification).
  if (new Set(ids).size !== ids.length)
    throw badRequest('Upload-Concat lists a partial upload more than once');
  return { kind: 'final', ids };
}
