import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import busboy from 'busboy';
import { AppError, badRequest, payloadTooLarge, unsupportedMediaType } from './errors';
import { decodeUtf8 } from './json-body';

export interface MultipartLimits {
  /** Most file parts; one more is a 400 (never a silent drop). */
  files: number;
  /** Most text fields; one more is a 400. */
  fields: number;
  /** Largest file part in bytes; larger is a 413. */
  fileBytes: number;
  /** Largest text field in bytes; larger is a 413. Default 1 MiB. */
  fieldBytes?: number;
}

export interface MultipartFile {
  field: string;
  /** As the client sent it; untrusted. */
  filename: string | undefined;
  mimeType: string;
  /** The part's bytes. Read it to the end or destroy it; errors are already handled. */
  stream: Readable;
}

/**
 * Reads a multipart/form-data body (RFC 7578) as it arrives: text fields are collected, each
 * file part is handed to `onFile`, which streams it somewhere and resolves when done. Anything
 * wrong is a clear 4xx and nothing keeps running: a truncated body ("Unexpected end of form"),
 * a repeated field name, too many parts, a part over its limit, a client that goes away, or
 * `onFile` refusing a part. Before the promise rejects, every `onFile` has settled, so the
 * caller can remove what they wrote.
 */
export function receiveMultipart<T>(
  req: IncomingMessage,
  limits: MultipartLimits,
  onFile: (file: MultipartFile) => Promise<T>,
): Promise<{ fields: Record<string, string>; files: T[] }> {
  const type = req.headers['content-type'] ?? '';
  if (!/^multipart\/form-data/i.test(type))
    return Promise.reject(unsupportedMediaType(`expected multipart/form-data, got "${type}"`));
  // The client may be gone before the caller got here (it awaited something first): then no
  // 'close' would come, and the form would wait forever.
  if (req.destroyed && !req.complete)
    return Promise.reject(new AppError(400, 'CLIENT_ABORTED', 'the client closed the connection mid-upload'));
  const fieldBytes = limits.fieldBytes ?? 1024 * 1024;
  let parser: busboy.Busboy;
  try {
    parser = busboy({
      headers: req.headers,
      // Values arrive as bytes (latin1 keeps them 1:1) and are decoded strictly below:
      // busboy's own UTF-8 decoding would turn invalid bytes into U+FFFD without a word.
      defCharset: 'latin1',
      defParamCharset: 'latin1',
      limits: {
        files: limits.files,
        fields: limits.fields,
        parts: limits.files + limits.fields,
        fileSize: limits.fileBytes,
        fieldSize: fieldBytes,
      },
    });
  } catch (err) {
    return Promise.reject(badRequest(`malformed multipart request: ${(err as Error).message}`));
  }

  return new Promise((resolve, reject) => {
    const fields: Record<string, string> = Object.create(null);
    const files: T[] = [];
    const pending: Promise<unknown>[] = [];
    const open = new Set<Readable>();
    let failure: Error | undefined;
    let settled = false;

    const finish = () => {
      if (settled) return;
      settled = true;
      Promise.allSettled(pending).then(() => {
        if (failure) reject(failure);
        else resolve({ fields: { ...fields }, files });
      });
    };
    const fail = (err: Error) => {
      if (failure) return;
      failure = err;
      req.unpipe(parser);
      for (const s of open) s.destroy(err);
      finish();
    };

    parser.on('field', (rawName, rawValue, info) => {
      if (failure) return;
      if (info.valueTruncated)
        return fail(payloadTooLarge(`form field "${rawName}" is longer than ${fieldBytes} bytes`));
      try {
        const name = utf8Of(rawName, 'a form field name');
        if (name in fields) throw badRequest(`form field "${name}" is sent more than once`);
        fields[name] = utf8Of(rawValue, `form field "${name}"`);
      } catch (err) {
        fail(err as Error);
      }
    });
    parser.on('file', (field, stream, info) => {
      // A FileStream that errors with no listener (a truncated form) would crash the process.
      stream.on('error', () => undefined);
      if (failure) {
        stream.resume();
        return;
      }
      open.add(stream);
      stream.once('close', () => open.delete(stream));
      stream.on('limit', () =>
        fail(
          payloadTooLarge(`file "${info.filename ?? field}" is larger than ${limits.fileBytes} bytes`, {
            part: 'file',
            limit_bytes: limits.fileBytes,
          }),
        ),
      );
      let saving: Promise<T>;
      try {
        const filename = info.filename === undefined ? undefined : utf8Of(info.filename, 'a file name');
        saving = onFile({
          field: utf8Of(field, 'a form field name'),
          filename,
          mimeType: info.mimeType,
          stream,
        });
      } catch (err) {
        saving = Promise.reject(err);
      }
      // Files are listed in the order they arrived, not the order their saves finished.
      const slot = files.length;
      files.push(undefined as T);
      const tracked = saving.then(
        (saved) => {
          if (!failure) files[slot] = saved;
        },
        (err: unknown) => {
          stream.resume();
          fail(err instanceof Error ? err : new Error(String(err)));
        },
      );
      pending.push(tracked);
    });
    parser.on('filesLimit', () =>
      fail(badRequest(`send at most ${limits.files} ${limits.files === 1 ? 'file' : 'files'}`)),
    );
    parser.on('fieldsLimit', () => fail(badRequest(`send at most ${limits.fields} form fields`)));
    parser.on('partsLimit', () => fail(badRequest('too many form parts')));
    parser.on('error', (err: Error) => fail(badRequest(`malformed multipart body: ${err.message}`)));
    parser.on('close', finish);
    req.on('error', () => fail(new AppError(400, 'CLIENT_ABORTED', 'the body broke off')));
    req.on('close', () => {
      if (!req.complete)
        fail(new AppError(400, 'CLIENT_ABORTED', 'the client closed the connection mid-upload'));
    });
    req.pipe(parser);
  });
}

/**
 * A value busboy read as latin1 (one char per byte), decoded as the UTF-8 it must be. A value
 * with characters past U+00FF was already decoded (an RFC 5987 filename*=UTF-8''…) and is kept.
 */
function utf8Of(value: string, what: string): string {
  if (/[^\u0000-\u00ff]/.test(value)) return value;
  return decodeUtf8(Buffer.from(value, 'latin1'), what);
}
