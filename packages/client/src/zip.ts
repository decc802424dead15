import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import archiver from 'archiver';
import { QlabClientError } from './errors';

export interface ZipOptions {
  /** zlib level 0 (store) to 9. Default 1: fast, and calibration JSON still shrinks a lot. */
  compressionLevel?: number;
  /** Input bytes read so far, of the total input bytes. */
  onProgress?: (processedBytes: number, totalBytes: number) => void;
}

async function sizeOf(p: string): Promise<number> {
  const s = await stat(p);
  if (!s.isDirectory()) return s.size;
  let total = 0;
  for (const entry of await readdir(p)) total += await sizeOf(path.join(p, entry));
  return total;
}

/**
 * Zips files (and folders, recursively) as a stream: each path goes in under its base name,
 * like the seed client's archive. Refuses missing paths and two inputs with the same name
 * before any byte is produced.
 */
export async function zipPaths(paths: string[], options: ZipOptions = {}) {
  if (paths.length === 0) throw new QlabClientError('give at least one file or folder to upload');
  const names = new Map<string, string>();
  let totalBytes = 0;
  for (const p of paths) {
    try {
      totalBytes += await sizeOf(p);
    } catch {
      throw new QlabClientError(`cannot read ${p}: no such file or folder`);
    }
    const name = path.basename(path.resolve(p));
    const clash = names.get(name);
    if (clash) throw new QlabClientError(`${clash} and ${p} would both be stored as "${name}"; rename one`);
    names.set(name, p);
  }
  const archive = archiver('zip', { zlib: { level: options.compressionLevel ?? 1 } });
  if (options.onProgress) {
    const report = options.onProgress;
    archive.on('progress', (p) => report(p.fs.processedBytes, totalBytes));
  }
  for (const [name, p] of names) {
    if ((await stat(p)).isDirectory()) archive.directory(p, name);
    else archive.file(p, { name });
  }
  void archive.finalize();
  return { stream: archive, totalBytes };
}
