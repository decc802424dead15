import { createWriteStream } from 'node:fs';
import { lstat, mkdir, mkdtemp, readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import yauzl from 'yauzl';
import { QlabClientError } from './errors';

/** What an archive may expand to; anything past these is refused before it fills the disk. */
export interface UnpackLimits {
  /** Bytes of all entries together. Default 4 GiB. */
  totalBytes: number;
  /** Bytes of one entry. Default 2 GiB. */
  entryBytes: number;
  /** Entries. Default 10,000. */
  entries: number;
  /** Uncompressed ÷ compressed size of an entry above 1 MiB. Default 200 (zip bombs run to 1000+). */
  ratio: number;
}

export const DEFAULT_UNPACK_LIMITS: UnpackLimits = {
  totalBytes: 4 * 1024 ** 3,
  entryBytes: 2 * 1024 ** 3,
  entries: 10_000,
  ratio: 200,
};

const S_IFMT = 0o170000;
const S_IFLNK = 0o120000;

function refuse(detail: string): QlabClientError {
  return new QlabClientError(`refusing to unpack: ${detail}`);
}

function inside(folder: string, entryName: string): string {
  const target = path.resolve(folder, entryName);
  const rel = path.relative(folder, target);
  if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel))
    throw refuse(`"${entryName}" points outside the folder`);
  return target;
}

/** Counts bytes as they pass and stops past `limit` (declared sizes can lie). */
function capped(limit: number, name: string, count: (n: number) => void): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      seen += chunk.length;
      count(chunk.length);
      if (seen > limit) done(refuse(`"${name}" is larger than ${limit} bytes`));
      else done(null, chunk);
    },
  });
}

/**
 * Every entry into `folder` (a fresh temp dir), refusing links, names that climb out, and
 * sizes, counts and ratios past `limits`. Files are created exclusively ('wx'), so a name
 * twice in one archive is refused rather than overwritten.
 */
function extract(zip: yauzl.ZipFile, folder: string, limits: UnpackLimits): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const written: string[] = [];
    let entries = 0;
    let total = 0;
    // Declared sizes of all entries so far: many small entries can expand as much as one big one.
    let declared = 0;
    let compressed = 0;
    const fail = (err: Error) => {
      zip.close();
      reject(err instanceof QlabClientError ? err : new QlabClientError(`cannot unpack: ${err.message}`));
    };
    zip.on('error', fail);
    zip.on('end', () => resolve(written));
    zip.on('entry', (entry: yauzl.Entry) => {
      let target: string;
      try {
        if (++entries > limits.entries) throw refuse(`more than ${limits.entries} entries`);
        target = inside(folder, entry.fileName);
        if (((entry.externalFileAttributes >>> 16) & S_IFMT) === S_IFLNK)
          throw refuse(`"${entry.fileName}" is a symbolic link`);
        const size = entry.uncompressedSize;
        if (size > limits.entryBytes)
          throw refuse(`"${entry.fileName}" is larger than ${limits.entryBytes} bytes`);
        if (total + size > limits.totalBytes)
          throw refuse(`the archive expands to more than ${limits.totalBytes} bytes`);
        if (size > 1024 * 1024 && size / Math.max(entry.compressedSize, 1) > limits.ratio)
          throw refuse(`"${entry.fileName}" expands more than ${limits.ratio} times (a zip bomb?)`);
        declared += size;
        compressed += entry.compressedSize;
        if (declared > 1024 * 1024 && declared / Math.max(compressed, 1) > limits.ratio)
          throw refuse(`the archive expands more than ${limits.ratio} times (a zip bomb?)`);
      } catch (err) {
        return fail(err as Error);
      }
      if (entry.fileName.endsWith('/')) {
        mkdir(target, { recursive: true }).then(() => zip.readEntry(), fail);
        return;
      }
      zip.openReadStream(entry, (err, stream) => {
        if (err || !stream) return fail(err ?? new Error('no stream'));
        const room = Math.min(limits.entryBytes, limits.totalBytes - total);
        mkdir(path.dirname(target), { recursive: true })
          .then(() =>
            pipeline(
              stream,
              capped(room, entry.fileName, (n) => {
                total += n;
              }),
              createWriteStream(target, { flags: 'wx' }),
            ),
          )
          .then(() => {
            written.push(target);
            zip.readEntry();
          }, fail);
      });
    });
    zip.readEntry();
  });
}

/**
 * Moves what `from` holds into `to`, folder by folder. An existing file of the same name is
 * replaced; a symbolic link in `to` is replaced, never followed (rename acts on the link).
 */
async function mergeInto(from: string, to: string): Promise<void> {
  for (const name of await readdir(from)) {
    const src = path.join(from, name);
    const dest = path.join(to, name);
    const [s, d] = await Promise.all([lstat(src), lstat(dest).catch(() => undefined)]);
    if (s.isDirectory() && d?.isDirectory()) {
      await mergeInto(src, dest);
      continue;
    }
    if (d && (d.isDirectory() || s.isDirectory())) await rm(dest, { recursive: true, force: true });
    await rename(src, dest);
  }
}

type Opener = (options: yauzl.Options, cb: (err: Error | null, zip?: yauzl.ZipFile) => void) => void;

/**
 * Unpacks into a temp folder beside `folder`, then moves the result in; on any refusal or
 * error the temp folder goes and `folder` is as it was.
 */
async function unpackWith(folder: string, open: Opener, limits: UnpackLimits): Promise<string[]> {
  const root = path.resolve(folder);
  await mkdir(path.dirname(root), { recursive: true });
  const temp = await mkdtemp(path.join(path.dirname(root), `.${path.basename(root)}.unpack-`));
  try {
    const zip = await new Promise<yauzl.ZipFile>((resolve, reject) =>
      open({ lazyEntries: true, validateEntrySizes: true }, (err, z) =>
        err || !z ? reject(new QlabClientError(`not a zip archive: ${err?.message}`)) : resolve(z),
      ),
    );
    const written = await extract(zip, temp, limits);
    await mkdir(root, { recursive: true });
    await mergeInto(temp, root);
    return written.map((p) => path.join(root, path.relative(temp, p)));
  } finally {
    await rm(temp, { recursive: true, force: true });
  }
}

/** Unpacks zip bytes into `folder` (seed: unpack), within `limits` (see UnpackLimits). */
export function unpack(
  folder: string,
  zipData: Buffer,
  limits: Partial<UnpackLimits> = {},
): Promise<string[]> {
  return unpackWith(folder, (options, cb) => yauzl.fromBuffer(zipData, options, cb), {
    ...DEFAULT_UNPACK_LIMITS,
    ...limits,
  });
}

/** Unpacks a zip file on disk without reading it into memory. */
export function unpackFile(
  folder: string,
  zipPath: string,
  limits: Partial<UnpackLimits> = {},
): Promise<string[]> {
  return unpackWith(folder, (options, cb) => yauzl.open(zipPath, options, cb), {
    ...DEFAULT_UNPACK_LIMITS,
    ...limits,
  });
}
