import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { AppError, badRequest, payloadTooLarge, unsupportedMediaType } from '@qlab/kit';
import busboy from 'busboy';
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
 * memory. On any failure (bad form, over the limit, client gone) the temp file is removed
 * before the promise rejects, so nothing half-written stays behind.
 */
export function receiveMultipart(req: Request, options: ReceiveOptions): Promise<ReceivedUpload> {
  const type = req.headers['content-type'] ?? '';
  if (!/^multipart\/form-data/i.test(type)) {
    return Promise.reject(
      unsupportedMediaType(
        `expected multipart/form-data with a "${options.fileField}" file field, got "${type}"`,
      ),
    );
  }
  const declared = Number(req.headers['content-length'] ?? Number.NaN);
  if (declared > options.maxBytes + FORM_OVERHEAD) {
    return Promise.reject(tooLarge(options.maxBytes));
  }

  return new Promise<ReceivedUpload>((resolve, reject) => {
    let parser: busboy.Busboy;
    try {
      parser = busboy({
        headers: req.headers,
        limits: { files: 1, fields: 32, fieldSize: 1024 * 1024, parts: 64, fileSize: options.maxBytes },
      });
    } catch (err) {
      reject(badRequest(`malformed multipart request: ${(err as Error).message}`));
      return;
    }
    const fields: Record<string, string> = {};
    let file: ReceivedFile | undefined;
    let fileStream: Readable | undefined;
    let fileWritten: Promise<void> = Promise.resolve();
    let tempPath: string | undefined;
    let settled = false;

    const fail = (err: AppError | Error) => {
      if (settled) return;
      settled = true;
      req.unpipe(parser);
      fileStream?.destroy();
      // Wait for the writer to stop before deleting what it wrote.
      fileWritten
        .catch(() => undefined)
        .then(() => (tempPath ? rm(tempPath, { force: true }) : undefined))
        .finally(() => reject(err));
    };

    parser.on('field', (name, value, info) => {
      if (info.valueTruncated) return fail(badRequest(`form field "${name}" is longer than 1 MiB`));
      fields[name] = value;
    });

    parser.on('file', (name, stream, info) => {
      if (name !== options.fileField || tempPath) {
        stream.resume();
        return fail(badRequest(`unexpected file field "${name}": send one file, as "${options.fileField}"`));
      }
      fileStream = stream;
      const target = path.join(options.tmpDir, `${randomUUID()}.part`);
      tempPath = target;
      const hash = createHash('sha256');
      let size = 0;
      stream.on('data', (chunk: Buffer) => {
        hash.update(chunk);
        size += chunk.length;
      });
      stream.on('limit', () => fail(tooLarge(options.maxBytes)));
      // flush: fsync before close, so an acknowledged upload survives a crash.
      fileWritten = pipeline(stream, createWriteStream(target, { flush: true })).then(() => {
        file = { tempPath: target, filename: info.filename, size, sha256: hash.digest('hex') };
      });
      fileWritten.catch((err) => fail(err));
    });

    parser.on('filesLimit', () => fail(badRequest(`send exactly one file, as "${options.fileField}"`)));
    parser.on('fieldsLimit', () => fail(badRequest('too many form fields')));
    parser.on('partsLimit', () => fail(badRequest('too many form parts')));
    parser.on('error', (err: Error) => fail(badRequest(`malformed multipart body: ${err.message}`)));
    parser.on('close', () => {
      fileWritten.then(
        () => {
          if (settled) return;
          settled = true;
          resolve({ fields, file });
        },
        (err) => fail(err),
      );
    });
    req.on('close', () => {
      if (!req.complete)
        fail(new AppError(400, 'CLIENT_ABORTED', 'the client closed the connection mid-upload'));
    });
    req.pipe(parser);
  });
}

function tooLarge(maxBytes: number) {
  return payloadTooLarge(`upload is larger than the limit of ${maxBytes} bytes (QIBO_MAX_UPLOAD_BYTES)`, {
    maxBytes,
  });
}
