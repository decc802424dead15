import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import type { Handler } from '../types';
import { filesUnder } from './files';
import type { TaskSpec } from './task-spec';

export const checksumSha256Task: TaskSpec = {
  description: 'The SHA-256 and size of every input file.',
  inputs: 'optional',
  params: z.object({}),
};

/** checksum.sha256: the SHA-256 of every input file, streamed. */
export const checksumSha256: Handler = async ({ dir, progress, signal, log }) => {
  const inputs = await filesUnder(path.join(dir, 'input'));
  const files: { path: string; size: number; sha256: string }[] = [];
  for (const [i, f] of inputs.entries()) {
    signal.throwIfAborted();
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(f, { signal })) hash.update(chunk as Buffer);
    const file = {
      path: path.relative(dir, f).split(path.sep).join('/'),
      size: (await stat(f)).size,
      sha256: hash.digest('hex'),
    };
    files.push(file);
    log(`${file.sha256}  ${file.path}`);
    progress(Math.floor(((i + 1) / inputs.length) * 100));
  }
  return { files };
};
