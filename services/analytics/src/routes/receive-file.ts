import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { AppError, badRequest, payloadTooLarge } from '@qlab/kit';
import type { Request, Response } from 'express';

/**
 * Streams a request body to `file`, refusing more than `maxBytes` (413). On any failure the
 * partial file is removed; the response is marked `Connection: close` so a client still
 * sending a refused body is cut off instead of being left to upload the rest for nothing.
 */
export async function receiveToFile(
  req: Request,
  res: Response,
  file: string,
  maxBytes: number,
): Promise<number> {
  const tooLarge = () => payloadTooLarge(`bodies here are limited to ${maxBytes} bytes`, { limit: maxBytes });
  try {
    if (Number(req.headers['content-length'] ?? 0) > maxBytes) throw tooLarge();
    return await new Promise<number>((resolve, reject) => {
      const out = createWriteStream(file);
      let seen = 0;
      const fail = (err: unknown) => {
        req.unpipe(out);
        req.pause();
        out.destroy();
        reject(err);
      };
      req.on('data', (chunk: Buffer) => {
        seen += chunk.length;
        if (seen > maxBytes) fail(tooLarge());
      });
      req.on('aborted', () => fail(badRequest('the client stopped sending the body')));
      req.on('error', (err) => fail(badRequest(`the body broke off: ${err.message}`)));
      out.on('error', fail);
      out.on('finish', () => resolve(seen));
      req.pipe(out);
    });
  } catch (err) {
    await rm(file, { force: true });
    if (err instanceof AppError && err.status === 413) res.setHeader('Connection', 'close');
    throw err;
  }
}
