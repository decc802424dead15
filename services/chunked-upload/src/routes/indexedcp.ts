import { badRequest, parseInput, payloadTooLarge, serviceRouter } from '@qlab/kit';
import type { Request, Response, Router } from 'express';
import { DEFAULT_CLIENT_FILENAME, decodeHeaderName } from '../domain/path-modes';
import type { UploadService } from '../domain/upload-service';
import { chunkHeaders } from '../protocol/indexedcp/chunk-headers';
import { ChunkReceiver } from '../protocol/indexedcp/receive-chunk';
import { TooManyBytes } from '../storage/data-files';
import type { ServerKeys } from '../storage/server-keys';
import { encryptedRoutes } from './indexedcp-encrypted';

/** IndexedCP: `POST /upload`, one chunk per request (src/protocol/indexedcp/), and the encrypted routes. */
export function indexedcpRoutes(service: UploadService, encryption?: ServerKeys): Router {
  const router = serviceRouter();
  const { maxBytes } = service.policy;
  const { receive } = new ChunkReceiver(service);

  router.post('/upload', async (req: Request, res: Response) => {
    const h = parseInput(chunkHeaders, req.headers, 'headers');
    // enc-<session> uploads are encrypted streams: only decrypted packets may join them.
    if (h['x-upload-id']?.startsWith('enc-'))
      throw badRequest('X-Upload-Id values starting with "enc-" are reserved for encrypted uploads');
    const declared = Number(req.headers['content-length'] ?? Number.NaN);
    if (declared > maxBytes) {
      throw payloadTooLarge(`chunk is larger than UPLOAD_MAX_BYTES (${maxBytes})`);
    }
    try {
      res.json(
        await receive({
          keyId: String(res.locals.keyId),
          clientFilename: h['x-file-name'] ? decodeHeaderName(h['x-file-name']) : DEFAULT_CLIENT_FILENAME,
          index: h['x-chunk-index'],
          total: h['x-chunk-total'],
          sha256: h['x-chunk-sha256'],
          uploadId: h['x-upload-id'],
          body: req,
        }),
      );
    } catch (err) {
      if (err instanceof TooManyBytes) {
        throw payloadTooLarge(`upload is larger than UPLOAD_MAX_BYTES (${maxBytes})`);
      }
      throw err;
    }
  });

  if (encryption) router.use(encryptedRoutes(encryption, receive, maxBytes));
  return router;
}
