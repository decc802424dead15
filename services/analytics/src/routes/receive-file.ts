import { isUtf8 } from 'node:buffer';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  AppError,
  badRequest,
  jsonNestsDeeperThan,
  MAX_JSON_DEPTH,
  ndjsonNestsDeeperThan,
  payloadTooLarge,
} from '@qlab/kit';
import type { Request } from 'express';
import type { Rejected } from '../domain/loading';

/** What to do with a line that is not valid UTF-8 or too long: blank it (NDJSON: reported as rejected) or refuse the body (CSV). */
export type InvalidLinePolicy = 'blank' | 'refuse';

/** The loader's own limit (read_json maximum_object_size, read_csv max_line_size). */
export const MAX_LINE_BYTES = 16 * 1024 * 1024;

const utf8 = new TextDecoder('utf-8', { fatal: true });

const NL = 0x0a;
const NEWLINE = Buffer.from([NL]);

/**
 * Passes a body through line by line (a line ends at \n, which never occurs inside a UTF-8
 * sequence), checking that each line is valid UTF-8, and the size limit. DuckDB would fail the
 * whole load with a 500 on the first bad byte; here the bad line is named instead. A blanked
 * line keeps its number (the loader skips blank lines).
 */
class Utf8Lines extends Transform {
  readonly invalid: Rejected[] = [];
  private line = 1;
  private carry: Buffer = Buffer.alloc(0);
  /** The current line went past MAX_LINE_BYTES: its bytes are dropped until its end. */
  private overlong = false;
  private seen = 0;
  private first = true;

  constructor(
    private readonly policy: InvalidLinePolicy,
    private readonly maxBytes: number,
  ) {
    super();
  }

  private refuse(reason: string): Buffer {
    if (this.policy === 'refuse') throw badRequest(`line ${this.line} ${reason}`);
    this.invalid.push({ line: this.line, id: null, reason: `the line ${reason}` });
    return Buffer.alloc(0);
  }

  /** A whole line (without its \n): itself, or nothing when it is refused. */
  private check(bytes: Buffer): Buffer {
    if (this.overlong) {
      this.overlong = false;
      return this.refuse(`is longer than ${MAX_LINE_BYTES} bytes`);
    }
    try {
      utf8.decode(bytes);
    } catch {
      return this.refuse('is not valid UTF-8');
    }
    // DuckDB's JSON reader recurses: a line nested tens of thousands deep crashed the process.
    if (this.policy === 'blank' && jsonNestsDeeperThan(bytes, MAX_JSON_DEPTH))
      return this.refuse(`nests deeper than ${MAX_JSON_DEPTH} levels`);
    // CSV written on Windows ends its lines with \r\n (and may mix them): one line end for DuckDB.
    if (this.policy === 'refuse' && bytes[bytes.length - 1] === 0x0d)
      return bytes.subarray(0, bytes.length - 1);
    return bytes;
  }

  override _transform(input: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.seen += input.length;
    // A UTF-8 byte order mark (Windows editors write one) is not part of the first line.
    let chunk = input;
    if (this.first) {
      this.first = false;
      if (chunk[0] === 0xef && chunk[1] === 0xbb && chunk[2] === 0xbf) chunk = chunk.subarray(3);
    }
    if (this.seen > this.maxBytes) {
      done(payloadTooLarge(`bodies here are limited to ${this.maxBytes} bytes`, { limit: this.maxBytes }));
      return;
    }
    try {
      const data = this.carry.length > 0 ? Buffer.concat([this.carry, chunk]) : chunk;
      const last = data.lastIndexOf(NL);
      const rest = data.subarray(last + 1);
      const out = last === -1 ? undefined : this.lines(data.subarray(0, last + 1));
      // A line longer than the loader takes is dropped as it comes, so memory stays bounded.
      if (this.overlong || rest.length > MAX_LINE_BYTES) {
        this.overlong = true;
        this.carry = Buffer.alloc(0);
      } else this.carry = Buffer.from(rest);
      done(null, out);
    } catch (err) {
      done(err as Error);
    }
  }

  /**
   * Whole lines, each ending in \n. Usually every one passes, which is checked on the block at
   * once (valid UTF-8 as a whole, no line too deep, no \r to strip) and passes it on as it is:
   * checking and copying line by line cost 2-3 s per 195 MB (analytics README, "Where the time
   * goes"). Otherwise, line by line.
   */
  private lines(block: Buffer): Buffer {
    const fine =
      !this.overlong &&
      isUtf8(block) &&
      (this.policy === 'blank' ? !ndjsonNestsDeeperThan(block, MAX_JSON_DEPTH) : block.indexOf(0x0d) === -1);
    if (fine) {
      for (let nl = block.indexOf(NL); nl !== -1; nl = block.indexOf(NL, nl + 1)) this.line++;
      return block;
    }
    const out: Buffer[] = [];
    let start = 0;
    for (let nl = block.indexOf(NL); nl !== -1; nl = block.indexOf(NL, start)) {
      out.push(this.check(block.subarray(start, nl)), NEWLINE);
      this.line++;
      start = nl + 1;
    }
    return Buffer.concat(out);
  }

  override _flush(done: TransformCallback): void {
    try {
      done(null, this.carry.length > 0 || this.overlong ? this.check(this.carry) : undefined);
    } catch (err) {
      done(err as Error);
    }
  }
}

/**
 * Streams a request body to `file`, refusing more than `maxBytes` (413) and checking UTF-8
 * line by line (see Utf8Lines). On any failure the partial file is removed; the kit's error
 * handler then answers and closes the connection (the pipeline destroyed the body, so it
 * cannot be read on). Resolves with the lines it blanked, and why.
 */
export async function receiveToFile(
  req: Request,
  file: string,
  maxBytes: number,
  invalidLines: InvalidLinePolicy,
): Promise<{ refusedLines: Rejected[] }> {
  const lines = new Utf8Lines(invalidLines, maxBytes);
  try {
    if (Number(req.headers['content-length'] ?? 0) > maxBytes)
      throw payloadTooLarge(`bodies here are limited to ${maxBytes} bytes`, { limit: maxBytes });
    if (req.destroyed && !req.complete) throw badRequest('the client stopped sending the body');
    // pipeline waits for the file to close before it settles, so the rm below always wins.
    await pipeline(req, lines, createWriteStream(file)).catch((err: unknown) => {
      if (err instanceof AppError) throw err;
      throw badRequest('the client stopped sending the body');
    });
    return { refusedLines: lines.invalid };
  } catch (err) {
    await rm(file, { force: true });
    throw err;
  }
}
