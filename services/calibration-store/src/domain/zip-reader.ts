import { open } from 'node:fs/promises';
import { PassThrough, type Readable } from 'node:stream';
import yauzl from 'yauzl';

/** Bytes read at a time; the central directory is read in blocks of this size. */
const BLOCK = 1024 * 1024;

/**
 * Random access to a zip's bytes: a local file (the upload being checked) or an object in the
 * blob store (a stored archive, read with ranged GETs on S3).
 */
export interface ZipSource {
  size: number;
  /** The bytes at [position, position + length), fewer only past the end. */
  read(position: number, length: number): Promise<Buffer>;
  /** The bytes at [start, end) as a stream (yauzl's entry contents). */
  stream(start: number, end: number): Readable;
  close(): Promise<void>;
}

/** A local file as a ZipSource. */
export async function fileZipSource(file: string): Promise<ZipSource> {
  const handle = await open(file, 'r');
  try {
    const { size } = await handle.stat();
    return {
      size,
      async read(position, length) {
        const buf = Buffer.allocUnsafe(length);
        const { bytesRead } = await handle.read(buf, 0, length, position);
        return buf.subarray(0, bytesRead);
      },
      stream: (start, end) => handle.createReadStream({ start, end: end - 1, autoClose: false }),
      close: () => handle.close(),
    };
  } catch (err) {
    await handle.close();
    throw err;
  }
}

/** A source whose reads are ranged stream reads (`get(start, endInclusive)`), as S3 has them. */
export function rangedZipSource(
  size: number,
  get: (start: number, end: number) => Promise<Readable | undefined>,
): ZipSource {
  const body = async (start: number, end: number) => {
    const s = await get(start, end);
    if (!s) throw new Error('the archive content is missing');
    return s;
  };
  return {
    size,
    async read(position, length) {
      const end = Math.min(position + length, size) - 1;
      if (end < position) return Buffer.alloc(0);
      const parts: Buffer[] = [];
      for await (const chunk of await body(position, end)) parts.push(chunk as Buffer);
      return Buffer.concat(parts);
    },
    stream(start, end) {
      const out = new PassThrough();
      if (end <= start) return out.end();
      body(start, end - 1).then(
        (s) => s.on('error', (err) => out.destroy(err)).pipe(out),
        (err: Error) => out.destroy(err),
      );
      return out;
    },
    close: async () => undefined,
  };
}

/**
 * A source for yauzl that serves small reads from a 1 MiB block read ahead: yauzl reads each
 * central directory entry with two reads of a few dozen bytes, and a file read per entry made a
 * 150,000-entry listing take 25 s (a ranged GET per entry would be far worse). Memory stays one
 * block per open zip.
 */
class BlockReader extends yauzl.RandomAccessReader {
  private block: Buffer = Buffer.alloc(0);
  private blockStart = 0;
  private served = 0;

  constructor(private readonly source: ZipSource) {
    super();
  }

  override read(
    buffer: Buffer,
    offset: number,
    length: number,
    position: number,
    callback: (err: Error | null, bytesRead?: number) => void,
  ): void {
    const inBlock = position >= this.blockStart && position + length <= this.blockStart + this.block.length;
    if (inBlock) {
      this.block.copy(buffer, offset, position - this.blockStart, position - this.blockStart + length);
      // Asynchronous like a real read (yauzl's lazy entries would otherwise recurse once per
      // entry), without a trip to the thread pool; every 1,024th read yields to other requests.
      if (++this.served % 1024 === 0) setImmediate(() => callback(null, length));
      else queueMicrotask(() => callback(null, length));
      return;
    }
    const want = Math.min(Math.max(length, BLOCK), this.source.size - position);
    if (want < length) {
      queueMicrotask(() => callback(null, Math.max(0, want)));
      return;
    }
    this.source.read(position, want).then(
      (block) => {
        this.block = block;
        this.blockStart = position;
        const n = Math.min(length, block.length);
        block.copy(buffer, offset, 0, n);
        callback(null, n);
      },
      (err: Error) => callback(err),
    );
  }

  override _readStreamForRange(start: number, end: number): Readable {
    return this.source.stream(start, end);
  }

  override close(callback: (err: Error | null) => void): void {
    this.source.close().then(
      () => callback(null),
      (err: Error) => callback(err),
    );
  }
}

/** Opens a zip for yauzl through the block reader (options as yauzl.open's); a path is a local file. */
export async function openZip(from: string | ZipSource, options: yauzl.Options): Promise<yauzl.ZipFile> {
  const source = typeof from === 'string' ? await fileZipSource(from) : from;
  const reader = new BlockReader(source);
  return new Promise((resolve, reject) => {
    yauzl.fromRandomAccessReader(reader, source.size, options, (zipErr, zip) => {
      if (zipErr || !zip) {
        reader.close(() => reject(zipErr ?? new Error('unreadable zip')));
        return;
      }
      resolve(zip);
    });
  });
}
