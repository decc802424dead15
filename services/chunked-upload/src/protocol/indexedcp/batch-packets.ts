import { Transform } from 'node:stream';
import { AppError, badRequest, payloadTooLarge } from '@qlab/kit';
import type { Request } from 'express';
import Assembler from 'stream-json/Assembler';
import { parser } from 'stream-json/Parser';
import { streamFields } from '../../domain/envelope';

/** Largest plaintext of one packet (the original client's packets are its 1 MB chunks). */
export const MAX_PACKET_BYTES = 16 * 1024 * 1024;
/** Longest JSON string in a batch (a packet's base64 ciphertext). */
const MAX_STRING_CHARS = Math.ceil(MAX_PACKET_BYTES / 3) * 4 + 4;
/** All the characters one packet object may hold: its ciphertext and the small fields. */
const MAX_PACKET_CHARS = MAX_STRING_CHARS + 64 * 1024;
/** What a packet object may hold; anything else is refused as it streams in, never assembled. */
const PACKET_KEYS = new Set(['ciphertext', 'iv', 'authTag', 'aad', 'seq']);

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
export async function* batchPackets(
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
