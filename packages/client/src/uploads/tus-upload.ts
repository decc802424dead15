import { createReadStream } from 'node:fs';
import { mkdir, realpath, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import path from 'node:path';
import * as tus from 'tus-js-client';

export interface TusUploadOptions {
  /** The tus endpoint, e.g. http://127.0.0.1:3000/files. */
  endpoint: string;
  apiKey?: string;
  /** Bytes per PATCH; default: the rest of the file in one request. */
  chunkSize?: number;
  /** File name stored on the server (default: the base name). */
  name?: string;
  /** Where unfinished uploads are remembered for resuming; default ~/.qlab/tus-uploads.json (the CLI: QLAB_TUS_RESUME_FILE). */
  resumeFile?: string;
  onProgress?: (sentBytes: number, totalBytes: number) => void;
  /** Waits between automatic retries (ms). Default [0, 1000, 3000, 5000]. */
  retryDelays?: number[];
}

export interface TusUploadResult {
  url: string;
  size: number;
  /** True when an earlier, interrupted upload of the same file was continued. */
  resumed: boolean;
}

// The Node build ships a file-backed URL store that the package's types do not declare.
const { FileUrlStorage } = tus as unknown as { FileUrlStorage: new (file: string) => tus.UrlStorage };

/**
 * Uploads a file with tus, resuming an earlier interrupted upload of the same file (same path,
 * size and modification time, same endpoint) from the server's offset.
 */
export async function tusUploadFile(file: string, options: TusUploadOptions): Promise<TusUploadResult> {
  const info = await stat(file);
  const real = await realpath(file);
  const resumeFile = options.resumeFile ?? path.join(homedir(), '.qlab', 'tus-uploads.json');
  // The store locks by creating "<file>.lock": its folder must exist.
  await mkdir(path.dirname(resumeFile), { recursive: true });
  const storage = new FileUrlStorage(resumeFile);
  const fingerprint = `qlab:${options.endpoint}:${real}:${info.size}:${info.mtimeMs}`;
  return new Promise((resolve, reject) => {
    let resumed = false;
    const upload = new tus.Upload(createReadStream(file), {
      endpoint: options.endpoint,
      headers: options.apiKey ? { Authorization: `Bearer ${options.apiKey}` } : {},
      chunkSize: options.chunkSize ?? Number.POSITIVE_INFINITY,
      uploadSize: info.size,
      metadata: { filename: options.name ?? path.basename(file) },
      retryDelays: options.retryDelays ?? [0, 1000, 3000, 5000],
      urlStorage: storage,
      fingerprint: async () => fingerprint,
      removeFingerprintOnSuccess: true,
      onProgress: (sent, total) => options.onProgress?.(sent, total),
      onError: (err) => reject(err),
      onSuccess: () => resolve({ url: upload.url ?? '', size: info.size, resumed }),
    });
    upload.findPreviousUploads().then((previous) => {
      const last = previous.sort((a, b) => (a.creationTime < b.creationTime ? 1 : -1))[0];
      if (last) {
        resumed = true;
        upload.resumeFromPreviousUpload(last);
      }
      upload.start();
    }, reject);
  });
}
