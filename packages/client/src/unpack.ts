import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import yauzl from 'yauzl';
import { QlabClientError } from './errors';

function inside(folder: string, entryName: string): string {
  const target = path.resolve(folder, entryName);
  const rel = path.relative(folder, target);
  if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) {
    throw new QlabClientError(`refusing to unpack "${entryName}": it points outside ${folder}`);
  }
  return target;
}

function extract(zip: yauzl.ZipFile, folder: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const written: string[] = [];
    const fail = (err: Error) => {
      zip.close();
      reject(err instanceof QlabClientError ? err : new QlabClientError(`cannot unpack: ${err.message}`));
    };
    zip.on('error', fail);
    zip.on('end', () => resolve(written));
    zip.on('entry', (entry: yauzl.Entry) => {
      let target: string;
      try {
        target = inside(folder, entry.fileName);
      } catch (err) {
        return fail(err as Error);
      }
      if (entry.fileName.endsWith('/')) {
        mkdir(target, { recursive: true }).then(() => zip.readEntry(), fail);
        return;
      }
      zip.openReadStream(entry, (err, stream) => {
        if (err || !stream) return fail(err ?? new Error('no stream'));
        mkdir(path.dirname(target), { recursive: true })
          .then(() => pipeline(stream as Readable, createWriteStream(target)))
          .then(() => {
            written.push(target);
            zip.readEntry();
          }, fail);
      });
    });
    zip.readEntry();
  });
}

type Opener = (options: yauzl.Options, cb: (err: Error | null, zip?: yauzl.ZipFile) => void) => void;

async function unpackWith(folder: string, open: Opener): Promise<string[]> {
  const root = path.resolve(folder);
  await mkdir(root, { recursive: true });
  const zip = await new Promise<yauzl.ZipFile>((resolve, reject) =>
    open({ lazyEntries: true }, (err, z) =>
      err || !z ? reject(new QlabClientError(`not a zip archive: ${err?.message}`)) : resolve(z),
    ),
  );
  return extract(zip, root);
}

/** Unpacks zip bytes into `folder` (seed: unpack). Entries that would land outside it are refused. */
export function unpack(folder: string, zipData: Buffer): Promise<string[]> {
  return unpackWith(folder, (options, cb) => yauzl.fromBuffer(zipData, options, cb));
}

/** Unpacks a zip file on disk without reading it into memory. */
export function unpackFile(folder: string, zipPath: string): Promise<string[]> {
  return unpackWith(folder, (options, cb) => yauzl.open(zipPath, options, cb));
}
