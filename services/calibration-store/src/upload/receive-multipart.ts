import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { AppError, badRequest, payloadTooLarge, receiveMultipart as readForm } from '@qlab/kit';
import type { Request } from 'express';

export interface ReceivedFile {
  /** Fully written and fsynced; the caller moves or deletes it. */
  tempPath: string;
  filename: string | undefined;
  size: number;
  sha256: string;
}

export interface ReceivedUpload {
  fields: Record<string, string>;
  file: ReceivedFile | undefined;
}

export interface ReceiveOptions {
  tmpDir: string;
  maxBytes: number;
  /** The one file field accepted, e.g. "archive". */
  fileField: string;
}

// Multipart framing and text fields on top of the file itself.
const FORM_OVERHEAD = 2 * 1024 * 1024;

/**
 * Streams a multipart upload to a temp file, hashing as it goes; never holds the file in
 * memory. Exactly one file, in `fileField`: a second file part, another file field or a file
 * over the limit is refused at once (the kit's receiveMultipart stops reading). On any failure
 * the temp file is removed before the promise rejects, so nothing half-written stays behind.
 */
export async function receiveMultipart(req: Request, options: ReceiveOptions): Promise<ReceivedUpload> {
  const declared = Number(req.headers['content-length'] ?? Number.NaN);
  if (declared > options.maxBytes + FORM_OVERHEAD) throw tooLarge(options.maxBytes);
  let temp: string | undefined;
  try {
    const { fields, files } = await readForm(
      req,
      { files: 1, fields: 32, fileBytes: options.maxBytes, fieldBytes: 1024 * 1024 },
      async ({ field, filename, stream }) => {
        if (field !== options.fileField)
          throw badRequest(`unexpected file field "${field}": send one file, as "${options.fileField}"`);
        const target = path.join(options.tmpDir, `${randomUUID()}.part`);
        temp = target;
        const hash = createHash('sha256');
        let size = 0;
        stream.on('data', (chunk: Buffer) => {
          hash.update(chunk);
          size += chunk.length;
        });
        // flush: fsync before close, so an acknowledged upload survives a crash.
        await pipeline(stream, createWriteStream(target, { flush: true }));
        return { tempPath: target, filename, size, sha256: hash.digest('hex') };
      },
    );
    return { fields, file: files[0] };
  } catch (err) {
    if (temp) await rm(temp, { force: true });
    if (err instanceof AppError && err.extras.part === 'file') throw tooLarge(options.maxBytes);
    throw err;
  }
}

/** A multipart form of text fields only (a download's selector): any file part is a 400. */
export async function formFields(req: Request): Promise<Record<string, string>> {
  const { fields } = await readForm(req, { files: 0, fields: 16, fileBytes: 0 }, async () => {
    throw badRequest('this form takes text fields only');
  });
  return fields;
}

function tooLarge(maxBytes: number) {
  return payloadTooLarge(`upload is larger than the limit of ${maxBytes} bytes (QIBO_MAX_UPLOAD_BYTES)`, {
    maxBytes,
  });
}
