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
import { MAX_LINE_BYTES, type ReceivedLines, type Rejected } from '../domain/loading';

/** What to do with a line that is not valid UTF-8 or too long: blank it (NDJSON: reported as rejected) or refuse the body (CSV). */
export type InvalidLinePolicy = 'blank' | 'refuse';

const utf8 = new TextDecoder('utf-8', { fatal: true });

const NL = 0x0a;
const CR = 0x0d;
const NEWLINE = Buffer.from([NL]);
const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

/**
 * A \r inside an NDJSON line, which DuckDB's line reader fails on (a 500). Outside a string it
 * is JSON whitespace and becomes a space; inside one it makes the line invalid JSON, and a \x01
 * keeps it so.
 */
function withoutCr(line: Buffer): Buffer {
  const out = Buffer.from(line);
  let inString = false;
  for (let i = 0; i < out.length; i++) {
    const c = out[i];
    if (c === CR) out[i] = inString ? 0x01 : 0x20;
    else if (inString && c === 0x5c) i++;
    else if (c === 0x22) inString = !inString;
  }
  return out;
}

/**
 * Passes a body through line by line (a line ends at \n, which never occurs inside a UTF-8
 * sequence), checking that each line is valid UTF-8, and the size limit. DuckDB would fail the
 * whole load with a 500 on the first bad byte; here the bad line is named instead. A blanked
 * line keeps its number (the loader skips blank lines). A line may end in \r\n (the \r is
 * dropped); a \r inside an NDJSON line is rewritten (withoutCr), as DuckDB's line reader fails on it.
 */
class Utf8Lines extends Transform {
  readonly invalid: Rejected[] = [];
  plain = true;
  /** A blank line came; a record after it makes the file not plain. */
  private blank = false;
  private line = 1;
  /** The unfinished line's bytes, kept as they came (joining them per chunk was quadratic). */
  private carry: Buffer[] = [];
  private carried = 0;
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
    this.plain = false;
    return Buffer.alloc(0);
  }

  /** A whole line (without its \n): itself, or nothing when it is refused. */
  private check(line: Buffer): Buffer {
    // CSV and NDJSON written on Windows end their lines with \r\n (and may mix them).
    let bytes = line[line.length - 1] === CR ? line.subarray(0, line.length - 1) : line;
    if (this.overlong || bytes.length > MAX_LINE_BYTES) {
      this.overlong = false;
      return this.refuse(`is longer than ${MAX_LINE_BYTES} bytes`);
    }
    try {
      utf8.decode(bytes);
    } catch {
      return this.refuse('is not valid UTF-8');
    }
    if (this.policy === 'blank') {
      if (bytes.includes(CR)) bytes = withoutCr(bytes);
      // DuckDB's JSON reader recurses: a line nested tens of thousands deep crashed the process.
      if (jsonNestsDeeperThan(bytes, MAX_JSON_DEPTH))
        return this.refuse(`nests deeper than ${MAX_JSON_DEPTH} levels`);
      this.note(bytes.length, bytes[0]);
    }
    return bytes;
  }

  /**
   * Blank lines at the end change no row's number; one before a record, or a line that does not
   * start with `{`, makes the file not plain.
   */
  private note(length: number, first: number | undefined): void {
    if (length === 0) this.blank = true;
    else if (this.blank || first !== 0x7b) this.plain = false;
  }

  override _transform(input: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.seen += input.length;
    if (this.seen > this.maxBytes) {
      done(payloadTooLarge(`bodies here are limited to ${this.maxBytes} bytes`, { limit: this.maxBytes }));
      return;
    }
    try {
      let chunk = input;
      // A UTF-8 byte order mark (Windows editors write one) is not part of the first line: the
      // body's first bytes wait until there are enough to tell.
      if (this.first) {
        const head = this.carried > 0 ? Buffer.concat([...this.carry, input]) : input;
        this.carry = [];
        this.carried = 0;
        if (head.length < BOM.length && BOM.subarray(0, head.length).equals(head)) {
          this.hold(head);
          done();
          return;
        }
        this.first = false;
        chunk = head.subarray(0, BOM.length).equals(BOM) ? head.subarray(BOM.length) : head;
      }
      const last = chunk.lastIndexOf(NL);
      if (last === -1) {
        this.hold(chunk);
        done();
        return;
      }
      let data = this.carried > 0 ? Buffer.concat([...this.carry, chunk]) : chunk;
      const end = this.carried + last;
      this.carry = [];
      this.carried = 0;
      const out = this.lines(data.subarray(0, end + 1));
      data = data.subarray(end + 1);
      if (data.length > 0) this.hold(data);
      done(null, out);
    } catch (err) {
      done(err as Error);
    }
  }

  /** Bytes of a line whose end has not come; past the loader's limit they are dropped as they come. */
  private hold(bytes: Buffer): void {
    if (this.overlong) return;
    this.carried += bytes.length;
    if (this.carried > MAX_LINE_BYTES + 1) {
      this.overlong = true;
      this.carry = [];
      this.carried = 0;
    } else this.carry.push(bytes);
  }

  /**
   * Whole lines, each ending in \n. Usually every one passes, which is checked on the block at
   * once (valid UTF-8 as a whole, no line too deep or too long, no \r) and passes it on as it
   * is: checking and copying line by line cost 2-3 s per 195 MB (analytics README, "Where the
   * time goes"). Otherwise, line by line.
   */
  private lines(block: Buffer): Buffer {
    if (
      !this.overlong &&
      block.indexOf(CR) === -1 &&
      isUtf8(block) &&
      (this.policy === 'refuse' || !ndjsonNestsDeeperThan(block, MAX_JSON_DEPTH)) &&
      this.countLines(block)
    )
      return block;
    const out: Buffer[] = [];
    let start = 0;
    for (let nl = block.indexOf(NL); nl !== -1; nl = block.indexOf(NL, start)) {
      out.push(this.check(block.subarray(start, nl)), NEWLINE);
      this.line++;
      start = nl + 1;
    }
    return Buffer.concat(out);
  }

  /** Counts the block's lines when none is too long (false: none counted), noting each (see note). */
  private countLines(block: Buffer): boolean {
    let lines = 0;
    let start = 0;
    const { blank, plain } = this;
    for (let nl = block.indexOf(NL); nl !== -1; nl = block.indexOf(NL, start)) {
      if (nl - start > MAX_LINE_BYTES) {
        // The block goes line by line instead, which notes its lines again from here.
        this.blank = blank;
        this.plain = plain;
        return false;
      }
      if (this.policy === 'blank') this.note(nl - start, block[start]);
      lines++;
      start = nl + 1;
    }
    this.line += lines;
    return true;
  }

  override _flush(done: TransformCallback): void {
    try {
      // (A body shorter than a byte order mark, still held as one: it is a line like any other.)
      done(null, this.carried > 0 || this.overlong ? this.check(Buffer.concat(this.carry)) : undefined);
    } catch (err) {
      done(err as Error);
    }
  }
}

/**
 * Streams a request body to `file`, refusing more than `maxBytes` (413) and checking UTF-8
 * line by line (see Utf8Lines). On any failure the partial file is removed; the kit's error
 * handler then answers and closes the connection (the pipeline destroyed the body, so it
 * cannot be read on). Resolves with the lines it blanked, and why, and whether every line was plain.
 */
export async function receiveToFile(
  req: Request,
  file: string,
  maxBytes: number,
  invalidLines: InvalidLinePolicy,
): Promise<ReceivedLines> {
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
    return { refused: lines.invalid, plain: lines.plain };
  } catch (err) {
    await rm(file, { force: true });
    throw err;
  }
}
