import express, { type RequestHandler } from 'express';
import { AppError, payloadTooLarge, unsupportedMediaType } from './errors';

/** Deeper JSON than this is refused: no API here nests that far, and deep values crash recursive code. */
export const MAX_JSON_DEPTH = 64;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The text of `buf`, or a 400 unless it is valid UTF-8 (RFC 8259 §8.1: JSON text exchanged
 * between systems "MUST be encoded using UTF-8"). Never replaced with U+FFFD in silence.
 */
export function decodeUtf8(buf: Uint8Array, what = 'the request body'): string {
  try {
    return utf8.decode(buf);
  } catch {
    throw new AppError(400, 'INVALID_UTF8', `${what} is not valid UTF-8`);
  }
}

/**
 * Is the nesting of arrays and objects in a JSON text deeper than `max` (strings skipped)? For
 * text, or for its UTF-8 bytes (the structural characters are the same single bytes).
 */
export function jsonNestsDeeperThan(text: string | Uint8Array, max: number): boolean {
  const isText = typeof text === 'string';
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = isText ? text.charCodeAt(i) : text[i];
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) return true;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return false;
}

/**
 * Does any line of NDJSON bytes nest deeper than `max`? A line with at most `max` opening
 * brackets cannot, and only the others are scanned (jsonNestsDeeperThan): the brackets and line
 * ends are found with Buffer.indexOf (memchr), where a loop over every byte in JavaScript ran at
 * 160 MB/s here (analytics README, "Where the time goes").
 */
export function ndjsonNestsDeeperThan(bytes: Buffer, max: number): boolean {
  let curly = bytes.indexOf(0x7b);
  let square = bytes.indexOf(0x5b);
  let start = 0;
  while (start < bytes.length) {
    let end = bytes.indexOf(0x0a, start);
    if (end === -1) end = bytes.length;
    let openers = 0;
    while (curly !== -1 && curly < end) {
      openers++;
      curly = bytes.indexOf(0x7b, curly + 1);
    }
    while (square !== -1 && square < end) {
      openers++;
      square = bytes.indexOf(0x5b, square + 1);
    }
    if (openers > max && jsonNestsDeeperThan(bytes.subarray(start, end), max)) return true;
    start = end + 1;
  }
  return false;
}

class OutOfRange extends Error {}

/**
 * JSON.parse with the checks JSON.parse lacks, each a 400 naming what is wrong: invalid UTF-8,
 * nesting deeper than MAX_JSON_DEPTH, and numbers out of range (1e400 parses as Infinity and
 * would be stored as null).
 */
export function parseJsonStrict(input: Uint8Array | string, what = 'the request body'): unknown {
  const text = typeof input === 'string' ? input : decodeUtf8(input, what);
  if (jsonNestsDeeperThan(text, MAX_JSON_DEPTH))
    throw new AppError(400, 'TOO_DEEP', `${what} nests deeper than ${MAX_JSON_DEPTH} levels`);
  try {
    return JSON.parse(text, (_key, value: unknown) => {
      if (typeof value === 'number' && !Number.isFinite(value)) throw new OutOfRange();
      return value;
    });
  } catch (err) {
    if (err instanceof OutOfRange)
      throw new AppError(400, 'NUMBER_OUT_OF_RANGE', `${what} has a number too large to represent`);
    throw new AppError(400, 'MALFORMED_JSON', `${what} is not valid JSON`);
  }
}

/**
 * The JSON body parser of every service (application/json and +json types, up to `limit`):
 * parseJsonStrict, top-level object or array only, UTF-8 only (another charset is a 415).
 * An empty body reads as {}, as express.json does. Other content types pass untouched.
 */
export function jsonBody(limit: string | number = '1mb'): RequestHandler {
  const raw = express.raw({ type: ['application/json', 'application/*+json'], limit });
  const max = byteLimit(limit);
  return (req, res, next) => {
    // body-parser reads a refused body to its end before it answers: a 10 GiB Content-Length
    // would be waited for. Refuse it from the header, at once.
    if (
      Number(req.headers['content-length'] ?? 0) > max &&
      req.is(['application/json', 'application/*+json'])
    )
      return next(payloadTooLarge(`JSON bodies here are limited to ${max} bytes`));
    raw(req, res, (err?: unknown) => {
      if (err) return next(err);
      if (!Buffer.isBuffer(req.body)) return next();
      const charset = /;\s*charset=("?)([^";]+)\1/i.exec(req.headers['content-type'] ?? '')?.[2];
      if (charset && !/^utf-8$/i.test(charset))
        return next(unsupportedMediaType(`JSON bodies are UTF-8, not ${charset}`));
      try {
        const text = decodeUtf8(req.body);
        if (text.trim() === '') req.body = {};
        else if (!/^\s*[[{]/.test(text))
          throw new AppError(400, 'MALFORMED_JSON', 'the body must be a JSON object or array');
        else req.body = parseJsonStrict(text);
        next();
      } catch (e) {
        next(e);
      }
    });
  };
}

/** Form bodies (application/x-www-form-urlencoded), with the same UTF-8 rule. */
export function formBody(limit: string | number = '1mb'): RequestHandler {
  const max = byteLimit(limit);
  const parse = express.urlencoded({
    limit,
    extended: false,
    // The bytes are ASCII; what must be UTF-8 is what the percent-escapes decode to.
    verify: (_req, _res, buf) => {
      for (const part of decodeUtf8(buf).split('&')) {
        try {
          decodeURIComponent(part.replace(/\+/g, ' '));
        } catch {
          throw new AppError(
            400,
            'INVALID_UTF8',
            'the form body has a malformed or non-UTF-8 percent-escape',
          );
        }
      }
    },
  });
  return (req, res, next) => {
    if (Number(req.headers['content-length'] ?? 0) > max && req.is('application/x-www-form-urlencoded'))
      return next(payloadTooLarge(`form bodies here are limited to ${max} bytes`));
    parse(req, res, next);
  };
}

/** "16kb", "1mb", "64mb" or bytes, as body-parser reads them (powers of 1024). */
function byteLimit(limit: string | number): number {
  if (typeof limit === 'number') return limit;
  const m = /^(\d+(?:\.\d+)?)\s*(b|kb|mb|gb)?$/i.exec(limit.trim());
  if (!m) throw new Error(`unreadable body limit "${limit}"`);
  const unit = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 }[(m[2] ?? 'b').toLowerCase() as 'b'];
  return Math.floor(Number(m[1]) * unit);
}
