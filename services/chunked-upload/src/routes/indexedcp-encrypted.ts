import { createHash } from 'node:crypto';
import { Readable, Transform } from 'node:stream';
import { AppError, badRequest, jsonBody, parseInput, payloadTooLarge, serviceRouter } from '@qlab/kit';
import type { Request, Response, Router } from 'express';
import Assembler from 'stream-json/Assembler';
import { parser } from 'stream-json/Parser';
import {
  openPacket,
  type Packet,
  packetFields,
  type StreamHeader,
  streamFields,
  unwrapSessionKey,
} from '../domain/envelope';
import { DEFAULT_CLIENT_FILENAME } from '../domain/path-modes';
import { TooManyBytes } from '../storage/data-files';
import type { ServerKeys } from '../storage/server-keys';
import type { ChunkAnswer, ReceiveChunk } from './indexedcp';

/** Largest plaintext of one packet (the original client's packets are its 1 MB chunks). */
export const MAX_PACKET_BYTES = 16 * 1024 * 1024;
/** A single-packet body: the packet as base64, the wrapped key and the names around it. */
const SINGLE_BODY_LIMIT = Math.ceil(MAX_PACKET_BYTES / 3) * 4 + 64 * 1024;
/** Longest JSON string in a batch (a packet's base64 ciphertext). */
const MAX_STRING_CHARS = Math.ceil(MAX_PACKET_BYTES / 3) * 4 + 4;
/** All the characters one packet object may hold: its ciphertext and the small fields. */
const MAX_PACKET_CHARS = MAX_STRING_CHARS + 64 * 1024;
/** What a packet object may hold; anything else is refused as it streams in, never assembled. */
const PACKET_KEYS = new Set(['ciphertext', 'iv', 'authTag', 'aad', 'seq']);
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

  const tooLarge = (res: Response, err: unknown) => {
    if (!(err instanceof TooManyBytes)) return err;
    res.setHeader('Connection', 'close');
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
      throw tooLarge(res, err);
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
      const refused = tooLarge(res, err);
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

interface Token {
  name: string;
  value?: string;
}

/** Refuses bytes that are not UTF-8 as they stream by (the JSON parser would replace them). */
function utf8Check(): Transform {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      try {
        decoder.decode(chunk, { stream: true });
        done(null, chunk);
      } catch {
        done(new AppError(400, 'INVALID_UTF8', 'the request body is not valid UTF-8'));
      }
    },
    flush(done) {
      try {
        decoder.decode();
        done();
      } catch {
        done(new AppError(400, 'INVALID_UTF8', 'the request body is not valid UTF-8'));
      }
    },
  });
}

/**
 * The packets of a batch body, one object at a time. The fields naming the stream must come
 * before `packets` (the original client writes them first); `onHeader` gets them when the
 * array starts. Strings are capped, nesting below a packet is refused.
 */
async function* batchPackets(
  req: Request,
  onHeader: (fields: Record<string, unknown>) => void,
): AsyncGenerator<Record<string, unknown>> {
  const tokens = parser({ packValues: true, streamValues: true });
  const check = utf8Check();
  // Piped by hand, not with pipeline(): that would destroy the request, and with it the socket
  // the refusal is to be answered on.
  req.on('error', (err) => tokens.destroy(err));
  check.on('error', (err) => tokens.destroy(err));
  req.pipe(check).pipe(tokens);
  const header: Record<string, unknown> = {};
  let depth = 0;
  let key: string | undefined;
  let inPackets = false;
  let sawPackets = false;
  let packet: Assembler | undefined;
  let stringChars = 0;
  let packetChars = 0;
  try {
    for await (const t of tokens as AsyncIterable<Token>) {
      if (t.name === 'stringChunk' || t.name === 'numberChunk') {
        stringChars += t.value!.length;
        if (stringChars > MAX_STRING_CHARS)
          throw payloadTooLarge(`a value in the batch is longer than ${MAX_STRING_CHARS} characters`);
        if (packet) {
          packetChars += t.value!.length;
          if (packetChars > MAX_PACKET_CHARS)
            throw payloadTooLarge(`a packet in the batch holds more than ${MAX_PACKET_CHARS} characters`);
        }
        continue;
      }
      // The streamed pieces' brackets; the packed token (keyValue, stringValue…) follows.
      if (STREAM_MARKS.has(t.name)) {
        stringChars = 0;
        continue;
      }
      if (t.name === 'startObject' || t.name === 'startArray') depth++;
      if (depth === 0 || (depth === 1 && t.name === 'startArray'))
        throw badRequest('the batch is a JSON object');
      if (depth > 3) throw badRequest('a packet holds only strings and numbers');
      if (packet) {
        if (t.name === 'keyValue' && !PACKET_KEYS.has(t.value!))
          throw badRequest(
            `a packet holds only ${[...PACKET_KEYS].join(', ')}; not "${t.value!.slice(0, 40)}"`,
          );
        packet.consume(t);
        if (t.name === 'endObject' || t.name === 'endArray') depth--;
        if (packet.done) {
          const value = packet.current as unknown;
          packet = undefined;
          if (value === null || typeof value !== 'object' || Array.isArray(value))
            throw badRequest('each packet is a JSON object');
          yield value as Record<string, unknown>;
        }
        continue;
      }
      if (t.name === 'endObject' || t.name === 'endArray') {
        depth--;
        if (inPackets && depth === 1) inPackets = false;
        continue;
      }
      if (depth === 1 && t.name === 'startObject') continue;
      if (depth === 1 && t.name === 'keyValue') {
        key = t.value;
        continue;
      }
      if (depth === 2 && t.name === 'startArray' && key === 'packets' && !sawPackets) {
        onHeader(header);
        inPackets = sawPackets = true;
        continue;
      }
      if (inPackets && depth === 3 && t.name === 'startObject') {
        packetChars = 0;
        packet = new Assembler();
        packet.consume(t);
        continue;
      }
      if (depth === 1 && key !== undefined && !inPackets) {
        const value = scalar(t);
        if (STREAM_KEYS.has(key)) header[key] = value;
        key = undefined;
        continue;
      }
      if (inPackets) throw badRequest('each packet is a JSON object');
      throw badRequest(`"${key}" must be a string or a number`);
    }
  } catch (err) {
    throw err instanceof AppError ? err : badRequest('the batch is not valid JSON');
  } finally {
    req.unpipe(check);
    check.destroy();
    tokens.destroy();
  }
  if (!sawPackets) throw badRequest('the batch has no "packets" array (after sessionId, kid and wrappedKey)');
}

const STREAM_KEYS = new Set(Object.keys(streamFields.shape));
const STREAM_MARKS = new Set(['startString', 'endString', 'startKey', 'endKey', 'startNumber', 'endNumber']);

function scalar(t: Token): unknown {
  if (t.name === 'stringValue') return t.value;
  if (t.name === 'numberValue') return Number(t.value);
  if (t.name === 'trueValue') return true;
  if (t.name === 'falseValue') return false;
  if (t.name === 'nullValue') return null;
  throw badRequest('the fields of a batch are strings and numbers');
}
