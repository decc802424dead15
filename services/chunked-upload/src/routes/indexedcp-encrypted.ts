import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { AppError, badRequest, jsonBody, parseInput, payloadTooLarge, serviceRouter } from '@qlab/kit';
import type { Request, Response, Router } from 'express';
import {
  openPacket,
  type Packet,
  packetFields,
  type StreamHeader,
  streamFields,
  unwrapSessionKey,
} from '../domain/envelope';
import { DEFAULT_CLIENT_FILENAME } from '../domain/path-modes';
import { batchPackets, MAX_PACKET_BYTES } from '../protocol/indexedcp/batch-packets';
import type { ChunkAnswer, ReceiveChunk } from '../protocol/indexedcp/receive-chunk';
import { TooManyBytes } from '../storage/data-files';
import type { ServerKeys } from '../storage/server-keys';

/** A single-packet body: the packet as base64, the wrapped key and the names around it. */
const SINGLE_BODY_LIMIT = Math.ceil(MAX_PACKET_BYTES / 3) * 4 + 64 * 1024;
/** Unwrapped session keys kept, so a stream costs one RSA decryption, not one per packet. */
const SESSION_CACHE_SIZE = 1000;

const singleBody = streamFields.extend(packetFields(MAX_PACKET_BYTES).shape);

/**
 * IndexedCP's encrypted uploads (docs/ENCRYPTION.md upstream), on when UPLOAD_ENCRYPTION is set:
 * - `GET /public-key` (no key needed, as upstream): `{publicKey, kid, expiresAt}`;
 * - `POST /upload-encrypted`: one packet, `{sessionId, kid, wrappedKey, ciphertext, iv, authTag,
 *   aad, seq, fileName}`;
 * - `POST /upload-encrypted-batch`: `{sessionId, kid, wrappedKey, fileName, packets: [{ciphertext,
 *   iv, authTag, aad, seq}]}`, which the original client sends for runs of packets; read as a
 *   stream, one packet at a time, so a batch of any length is never held in memory;
 * - `POST /rotate-keys`: a new active key, old ones kept for decryption.
 * Each decrypted packet is a chunk (index = seq) of the IndexedCP upload `enc-<sessionId>`, so
 * path modes, quotas, ordering and completion are the plain protocol's.
 */
export function encryptedRoutes(keys: ServerKeys, receive: ReceiveChunk, maxBytes: number): Router {
  const router = serviceRouter();
  const sessionKeys = new Map<string, Buffer>();

  /** The stream's AES key, unwrapped once per (caller, session, wrapped key). */
  function sessionKey(keyId: string, h: StreamHeader): Buffer {
    const id = `${keyId}\n${h.sessionId}\n${h.kid}\n${createHash('sha256').update(h.wrappedKey).digest('hex')}`;
    let key = sessionKeys.get(id);
    if (!key) {
      key = unwrapSessionKey(h.wrappedKey, keys.privateKey(h.kid));
      if (sessionKeys.size >= SESSION_CACHE_SIZE) sessionKeys.delete(sessionKeys.keys().next().value!);
      sessionKeys.set(id, key);
    }
    return key;
  }

  function store(keyId: string, h: StreamHeader, packet: Packet): Promise<ChunkAnswer> {
    const plaintext = openPacket(packet, h.sessionId, sessionKey(keyId, h));
    return receive({
      keyId,
      clientFilename: h.fileName ?? DEFAULT_CLIENT_FILENAME,
      index: packet.seq,
      total: h.total,
      uploadId: `enc-${h.sessionId}`,
      body: Readable.from([plaintext]),
    });
  }

  const tooLarge = (err: unknown) => {
    if (!(err instanceof TooManyBytes)) return err;
    return payloadTooLarge(`upload is larger than UPLOAD_MAX_BYTES (${maxBytes})`);
  };

  router.get('/public-key', (_req, res) => {
    res.json(keys.publicKey());
  });

  router.post('/rotate-keys', async (_req, res) => {
    const kid = await keys.rotate();
    res.json({ message: 'Keys rotated successfully', newKeyId: kid, kid });
  });

  router.post('/upload-encrypted', jsonBody(SINGLE_BODY_LIMIT), async (req: Request, res: Response) => {
    if (!req.is('application/json'))
      throw new AppError(415, 'UNSUPPORTED_MEDIA_TYPE', 'send application/json');
    const body = parseInput(singleBody, req.body, 'body');
    try {
      const answer = await store(String(res.locals.keyId), body, body);
      res.json({
        ...answer,
        message: answer.message === 'Chunk received' ? 'Packet decrypted and saved' : answer.message,
        sessionId: body.sessionId,
        seq: body.seq,
      });
    } catch (err) {
      throw tooLarge(err);
    }
  });

  router.post('/upload-encrypted-batch', async (req: Request, res: Response) => {
    if (!req.is('application/json'))
      throw new AppError(415, 'UNSUPPORTED_MEDIA_TYPE', 'send application/json');
    const keyId = String(res.locals.keyId);
    let header: StreamHeader | undefined;
    let last: ChunkAnswer | undefined;
    let stored = 0;
    try {
      for await (const packet of batchPackets(req, (fields) => {
        header = parseInput(streamFields, fields, 'body');
        // A wrong key is refused before any packet is read.
        sessionKey(keyId, header);
      })) {
        last = await store(keyId, header!, parseInput(packetFields(MAX_PACKET_BYTES), packet, 'body'));
        stored++;
      }
    } catch (err) {
      // Packets before the refused one are kept (each is a durable chunk); say how far it got.
      const refused = tooLarge(err);
      if (refused instanceof AppError && stored > 0)
        throw new AppError(refused.status, refused.code, refused.detail, {
          ...refused.extras,
          savedPackets: stored,
        });
      throw refused;
    }
    if (!header || !last) throw badRequest('the batch holds no packets');
    res.json({
      ...last,
      message: 'Packets decrypted and saved',
      sessionId: header.sessionId,
      packets: stored,
    });
  });

  return router;
}
