import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { AppError } from '@qlab/kit';

/**
 * How a client-supplied file name becomes a path under the upload directory (IndexedCP):
 * - `ignore` (default): `<unix seconds>_<8 hex>_<path with separators as _>`, always unique and flat;
 * - `sanitize`: the base name only; names with separators or traversal are refused;
 * - `allow-paths`: sub-folders kept; traversal, absolute, UNC and drive paths refused.
 */
export type PathMode = 'ignore' | 'sanitize' | 'allow-paths';
export const PATH_MODES: PathMode[] = ['ignore', 'sanitize', 'allow-paths'];

const MAX_SEGMENT_BYTES = 200;
const MAX_PATH_BYTES = 1024;
const WINDOWS_RESERVED = /^(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?$/i;
// Control characters and characters Windows or shells treat specially.
const UNSAFE_CHARS = /[\u0000-\u001f\u007f<>:"|?*]/;

export class PathRefused extends AppError {
  constructor(detail: string) {
    super(400, 'PATH_REFUSED', detail);
  }
}

/**
 * Decodes a header's bytes as strict UTF-8. Node hands header values over as latin1; invalid or
 * overlong sequences (such as C0 AE for ".") are refused rather than guessed at.
 */
export function decodeHeaderName(raw: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(raw, 'latin1'));
  } catch {
    throw new PathRefused('the file name is not valid UTF-8');
  }
}

function byteLength(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

function checkCommon(name: string): string {
  if (name.length === 0) throw new PathRefused('the file name is empty');
  if (name.includes('\u0000')) throw new PathRefused('the file name contains a NUL byte');
  // Fold look-alikes (full-width dots and slashes) into what they look like before any check.
  return name.normalize('NFKC');
}

function truncateSegment(segment: string, maxBytes: number): string {
  if (byteLength(segment) <= maxBytes) return segment;
  const ext = path.extname(segment).slice(0, 16);
  let base = segment.slice(0, segment.length - ext.length);
  while (byteLength(base) + byteLength(ext) > maxBytes) base = base.slice(0, -1);
  return base + ext;
}

function ignoreMode(name: string, now: number): string {
  const parts = name
    .split(/[\\/]+/)
    .filter((p) => p !== '' && p !== '.' && p !== '..')
    .map((p) => p.replace(new RegExp(UNSAFE_CHARS.source, 'g'), '_'));
  const flat = parts.join('_').replace(/^\.+/, '') || 'file';
  const prefix = `${Math.floor(now / 1000)}_${randomBytes(4).toString('hex')}_`;
  return prefix + truncateSegment(flat, MAX_SEGMENT_BYTES - prefix.length);
}

function checkSegment(segment: string, whole: string): void {
  if (segment === '.' || segment === '..')
    throw new PathRefused(`"${whole}" climbs out of the upload directory`);
  if (UNSAFE_CHARS.test(segment))
    throw new PathRefused(`"${whole}" contains characters that are not allowed in file names`);
  if (WINDOWS_RESERVED.test(segment)) throw new PathRefused(`"${segment}" is a reserved device name`);
  if (/[. ]$/.test(segment)) throw new PathRefused(`"${segment}" ends with a dot or a space`);
  if (byteLength(segment) > MAX_SEGMENT_BYTES)
    throw new PathRefused(`a part of the name is longer than ${MAX_SEGMENT_BYTES} bytes`);
}

function sanitizeMode(name: string): string {
  if (/[\\/]/.test(name))
    throw new PathRefused(`"${name}" contains a path separator (path mode sanitize allows base names only)`);
  checkSegment(name, name);
  return name;
}

function allowPathsMode(name: string): string {
  if (name.includes('\\')) throw new PathRefused(`"${name}" contains a backslash; use / between folders`);
  if (name.startsWith('/') || /^[a-z]:/i.test(name)) throw new PathRefused(`"${name}" is an absolute path`);
  if (byteLength(name) > MAX_PATH_BYTES)
    throw new PathRefused(`"${name.slice(0, 40)}…" is longer than ${MAX_PATH_BYTES} bytes`);
  const segments = name.split('/').filter((s) => s !== '' && s !== '.');
  if (segments.length === 0) throw new PathRefused('the file name is empty');
  for (const s of segments) checkSegment(s, name);
  return segments.join('/');
}

/** The relative (posix) path an upload should land at, before clash handling. */
export function targetPathFor(mode: PathMode, clientName: string, now = Date.now()): string {
  const name = checkCommon(clientName);
  if (mode === 'ignore') return ignoreMode(name, now);
  if (mode === 'sanitize') return sanitizeMode(name);
  return allowPathsMode(name);
}

/** `data.csv` → `data_1730728950123.csv`: the seed's rename when a name is taken. */
export function withClashSuffix(relPath: string, now = Date.now(), attempt = 0): string {
  const ext = path.posix.extname(relPath);
  const base = relPath.slice(0, relPath.length - ext.length);
  return `${base}_${now}${attempt > 0 ? `_${attempt}` : ''}${ext}`;
}

/** Last line of defence: the absolute path, which must stay inside `root`. */
export function resolveInside(root: string, relPath: string): string {
  const abs = path.resolve(root, relPath);
  if (abs !== root && !abs.startsWith(root + path.sep))
    throw new PathRefused(`"${relPath}" resolves outside the upload directory`);
  return abs;
}
