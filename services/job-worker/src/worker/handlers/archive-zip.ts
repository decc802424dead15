import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import archiver from 'archiver';
import { z } from 'zod';
import type { Handler } from '../types';
import { filesUnder } from './files';
import type { TaskSpec } from './task-spec';

const ARCHIVE_NAME = /^[\w.-]{1,100}\.zip$/;

export const archiveZipTask: TaskSpec = {
  description: 'Zips the input files into one archive in output/.',
  inputs: 'required',
  params: z.object({
    name: z
      .string()
      .regex(ARCHIVE_NAME, 'name: 1-100 letters, digits, _ . - ending in .zip')
      .optional()
      .describe('Archive file name (default archive.zip)'),
  }),
};

/** archive.zip: zips the job's input files into output/<params.name or archive.zip>. */
export const archiveZip: Handler = async ({ dir, job, progress, signal, log }) => {
  const inputs = await filesUnder(path.join(dir, 'input'));
  if (inputs.length === 0) throw new Error('archive.zip needs at least one input file');
  const name =
    typeof job.params.name === 'string' && ARCHIVE_NAME.test(job.params.name)
      ? job.params.name
      : 'archive.zip';
  await mkdir(path.join(dir, 'output'), { recursive: true });
  const target = path.join(dir, 'output', name);
  const temp = `${target}.part`;
  let total = 0;
  for (const f of inputs) total += (await stat(f)).size;
  log(`zipping ${inputs.length} file(s), ${total} bytes, into output/${name}`);
  const zip = archiver('zip', { zlib: { level: 6 } });
  const out = createWriteStream(temp);
  const done = new Promise<void>((resolve, reject) => {
    out.on('close', resolve);
    out.on('error', reject);
    zip.on('error', reject);
  });
  signal.addEventListener('abort', () => zip.abort());
  zip.on('progress', (p) => progress(total === 0 ? 100 : Math.floor((p.fs.processedBytes / total) * 99)));
  zip.pipe(out);
  try {
    for (const f of inputs)
      zip.file(f, { name: path.relative(path.join(dir, 'input'), f).split(path.sep).join('/') });
    await zip.finalize();
    await done;
    signal.throwIfAborted();
    await rename(temp, target);
  } catch (err) {
    // No half-written archive stays behind a failed or cancelled job.
    zip.abort();
    out.destroy();
    await rm(temp, { force: true });
    throw err;
  }
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(target)) hash.update(chunk as Buffer);
  const size = (await stat(target)).size;
  log(`wrote output/${name}: ${size} bytes`);
  return {
    archive: `output/${name}`,
    files: inputs.length,
    size,
    sha256: hash.digest('hex'),
  };
};
