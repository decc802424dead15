import { stat } from 'node:fs/promises';
import path from 'node:path';
import { QlabClientError } from '../errors';
import { IndexedCPClient } from '../uploads/indexedcp-client';
import { tusUploadFile } from '../uploads/tus-upload';
import type { CliIO } from './program';
import { progressBar } from './progress';

export interface UploadCommandOptions {
  serverUrl: string;
  apiKey?: string;
  protocol: 'tus' | 'indexedcp';
  chunkSize?: number;
  /** IndexedCP only: seal chunks with the server's public key (fetched once, then cached). */
  encrypt?: boolean;
  io: CliIO;
}

/** `qlab upload`: each file with a progress bar; an interrupted upload continues where it stopped. */
export async function uploadFiles(files: string[], o: UploadCommandOptions): Promise<void> {
  for (const file of files) {
    const info = await stat(file).catch(() => undefined);
    if (!info?.isFile()) throw new QlabClientError(`cannot read ${file}: no such file`);
  }
  if (o.protocol === 'tus') {
    for (const file of files) {
      const bar = progressBar(path.basename(file), o.io.progress);
      try {
        const r = await tusUploadFile(file, {
          endpoint: `${o.serverUrl}/files`,
          apiKey: o.apiKey,
          resumeFile: process.env.QLAB_TUS_RESUME_FILE,
          chunkSize: o.chunkSize,
          onProgress: (sent, total) => bar.update(sent, total),
        });
        bar.stop();
        o.io.out(`${r.resumed ? 'resumed and uploaded' : 'uploaded'} ${file} (${r.size} bytes) → ${r.url}`);
      } catch (err) {
        bar.stop();
        throw new QlabClientError(
          `upload of ${file} failed: ${explain(err)} (run the same command again to resume)`,
        );
      }
    }
    return;
  }

  // IndexedCP: chunks are buffered in SQLite first, so a rerun continues from what is left.
  const bars = new Map<string, ReturnType<typeof progressBar>>();
  const client = new IndexedCPClient({
    serverUrl: o.serverUrl,
    apiKey: o.apiKey,
    chunkSize: o.chunkSize,
    storagePath: process.env.QLAB_INDEXEDCP_DB,
    encryption: o.encrypt,
    maxRetries: 5,
    // The progress bars say what info lines would; INDEXEDCP_LOG_LEVEL still wins.
    logLevel: process.env.INDEXEDCP_LOG_LEVEL || 'warn',
    onUploadProgress: (e) => {
      if (e.status === 'uploaded') bars.get(e.fileName)?.update(e.chunkIndex + 1, e.totalChunks);
      else
        o.io.err(
          `${e.fileName} chunk ${e.chunkIndex}: ${e.error}${e.nextRetryIn !== undefined ? `; retrying in ${e.nextRetryIn / 1000} s` : '; giving up'}`,
        );
    },
  });
  await client.initialize();
  try {
    const buffered = client.status();
    for (const file of files) {
      const info = await stat(file);
      const known = buffered.find(
        (b) =>
          b.file.sourcePath === path.resolve(file) &&
          b.file.size === info.size &&
          b.file.completedAt === null,
      );
      if (!known) await client.addFile(file);
      bars.set(path.basename(file), progressBar(path.basename(file), o.io.progress));
    }
    const result = await client.uploadBufferedFiles();
    for (const bar of bars.values()) bar.stop();
    for (const [name, state] of Object.entries(result)) o.io.out(`${name}: ${state}`);
    if (Object.values(result).some((s) => s !== 'complete'))
      throw new QlabClientError('some files did not finish; run the same command again to resume');
  } finally {
    for (const bar of bars.values()) bar.stop();
    await client.close();
  }
}

function explain(err: unknown): string {
  const message = (err as Error).message ?? String(err);
  if (/ECONNREFUSED/.test(message)) return 'cannot reach the upload server (is it running?)';
  if (/response code: 401/.test(message)) return 'the server refused the API key (pass --key)';
  return message.split('\n')[0] ?? message;
}
