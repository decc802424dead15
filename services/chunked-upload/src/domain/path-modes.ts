import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { AppError } from '@qlab/kit';

/**
 * How a client-supplied file name becomes a path under the upload directory, as IndexedCP's
 * docs/PATH-MODES.md describes them:
 * - `ignore` (default): `<ms timestamp>_<8 hex>_<path with separators as _>`, characters outside
 *   `[A-Za-z0-9._-]` as `-`; always unique and flat, so tools can split it on `_`;
 * - `sanitize`: "Strips all directory paths ... Only uses the base filename (e.g. `dir/file.txt` →
 *   `file.txt`)"; traversal and absolute paths are refused;
 * - `allow-paths`: sub-folders kept ("Still protects against path traversal (`../`) and absolute
 *   paths (`/`, `C:\`)").
 */
export type PathMode = 'ignore' | 'sanitize' | 'allow-paths';
export const PATH_MODES: PathMode[] = ['ignore', 'sanitize', 'allow-paths'];

export interface NamingRules {
  mode: PathMode;
  /**
   * Also refuse what only Windows forbids (`CON`, `NUL.txt`, `<>:"|?*`, a trailing dot or space).
   * Off by default: the original server runs on POSIX and takes such names (UPLOAD_WINDOWS_SAFE_NAMES).
   */
  windowsSafe?: boolean;
}

/** What the original server names a chunk that comes without X-File-Name. */
export const DEFAULT_CLIENT_FILENAME = 'uploaded_file.txt';

const MAX_SEGMENT_BYTES = 200;
/** ignore-mode names are ASCII; the original truncates them to 255 characters. */
const MAX_FLAT_NAME_BYTES = 255;
const MAX_PATH_BYTES = 1024;
/** Device names Windows reserves, also with an extension or spaces before it (`CON .txt`). */
const WINDOWS_RESERVED =
  /^(con|prn|aux|nul|com[0-9\u00b9\u00b2\u00b3]|lpt[0-9\u00b9\u00b2\u00b3]|conin\$|conout\$|clock\$) *(\..*)?$/i;
const WINDOWS_UNSAFE_CHARS = /[<>:"|?*]/;
/** C0, DEL and C1 (U+0080–U+009F: CSI and its kin drive terminals too). */
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/;
/** A UTF-16 surrogate without its pair (JSON can carry one; no file system name can). */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
/** Percent-escapes of a dot, a separator or a control character: `..%2F` is never a name. */
const ENCODED_PATH_CHARS = /%(2e|2f|5c|[01][0-9a-f]|7f)/i;

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
  if (LONE_SURROGATE.test(name)) throw new PathRefused('the file name is not well-formed Unicode');
  // Fold look-alikes (full-width dots, slashes, percent signs) into what they look like before
  // any check; the encoded-character check runs on both forms.
  const folded = name.normalize('NFKC');
  if (ENCODED_PATH_CHARS.test(name) || ENCODED_PATH_CHARS.test(folded))
    throw new PathRefused(
      `"${name.slice(0, 80)}" holds percent-encoded dots, separators or control characters; send the name itself (UTF-8)`,
    );
  return folded;
}

/** The original strips one leading `./` (or `.\`); repeats of it mean the same. */
const stripDotPrefix = (name: string) => name.replace(/^(\.[\\/]+)+/, '');

function truncateTo(name: string, maxBytes: number): string {
  if (byteLength(name) <= maxBytes) return name;
  const ext = path.extname(name).slice(0, 16);
  let base = name.slice(0, name.length - ext.length);
  while (byteLength(base) + byteLength(ext) > maxBytes) base = base.slice(0, -1);
  return base + ext;
}

function ignoreMode(name: string, now: number, windowsSafe: boolean): string {
  // "Path separators → '_', Special chars → '-'" (tests/test-path-preservation.js upstream).
  let flat = stripDotPrefix(name)
    .replace(/[\\/]+/g, '_')
    .replace(/[^A-Za-z0-9._-]/gu, '-');
  if (windowsSafe) flat = flat.replace(/\.+$/, (dots) => '-'.repeat(dots.length));
  const prefix = `${now}_${randomBytes(4).toString('hex')}_`;
  return prefix + truncateTo(flat, MAX_FLAT_NAME_BYTES - prefix.length);
}

function checkSegment(segment: string, whole: string, windowsSafe: boolean): void {
  if (segment === '..') throw new PathRefused(`"${whole}" climbs out of the upload directory`);
  if (segment === '.') throw new PathRefused(`"${whole}" names no file`);
  if (CONTROL_CHARS.test(segment)) throw new PathRefused(`"${whole}" contains control characters`);
  if (byteLength(segment) > MAX_SEGMENT_BYTES)
    throw new PathRefused(`a part of the name is longer than ${MAX_SEGMENT_BYTES} bytes`);
  if (!windowsSafe) return;
  if (WINDOWS_UNSAFE_CHARS.test(segment))
    throw new PathRefused(
      `"${whole}" contains characters Windows does not allow (UPLOAD_WINDOWS_SAFE_NAMES)`,
    );
  if (WINDOWS_RESERVED.test(segment))
    throw new PathRefused(`"${segment}" is a reserved device name on Windows (UPLOAD_WINDOWS_SAFE_NAMES)`);
  if (/[. ]$/.test(segment))
    throw new PathRefused(`"${segment}" ends with a dot or a space (UPLOAD_WINDOWS_SAFE_NAMES)`);
}

/** `/x`, `C:\x`, `c:/x`, `\\server\share`, `//server/share`. */
function refuseAbsolute(name: string): void {
  if (/^[\\/]/.test(name) || /^[a-z]:/i.test(name))
    throw new PathRefused(`"${name.slice(0, 80)}" is an absolute path`);
}

/** The parts of a relative path, `.` and empty parts dropped, `..` refused. */
function segmentsOf(name: string, windowsSafe: boolean): string[] {
  refuseAbsolute(name);
  const segments = stripDotPrefix(name)
    .split(/[\\/]+/)
    .filter((s) => s !== '' && s !== '.');
  if (segments.length === 0) throw new PathRefused(`"${name}" names no file`);
  for (const s of segments) checkSegment(s, name, windowsSafe);
  return segments;
}

function sanitizeMode(name: string, windowsSafe: boolean): string {
  // reports/2024/data.csv → data.csv; ./myfile.txt → myfile.txt.
  return segmentsOf(name, windowsSafe).at(-1)!;
}

function allowPathsMode(name: string, windowsSafe: boolean): string {
  if (byteLength(name) > MAX_PATH_BYTES)
    throw new PathRefused(`"${name.slice(0, 40)}…" is longer than ${MAX_PATH_BYTES} bytes`);
  // The original takes Windows separators too: docs\2024\a.csv → docs/2024/a.csv.
  return segmentsOf(name, windowsSafe).join('/');
}

/** The relative (posix) path an upload should land at, before clash handling. */
export function targetPathFor(rules: NamingRules | PathMode, clientName: string, now = Date.now()): string {
  const { mode, windowsSafe = false } = typeof rules === 'string' ? { mode: rules } : rules;
  const name = checkCommon(clientName);
  if (mode === 'ignore') return ignoreMode(name, now, windowsSafe);
  if (mode === 'sanitize') return sanitizeMode(name, windowsSafe);
  return allowPathsMode(name, windowsSafe);
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
