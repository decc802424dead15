import { close, createReadStream, fstat, open, read } from 'node:fs';
import type { Readable } from 'node:stream';
import yauzl from 'yauzl';

/** Bytes read from disk at a time; the central directory is read in blocks of this size. */
const BLOCK = 1024 * 1024;

/**
 * A file for yauzl that serves small reads from a 1 MiB block read ahead: yauzl reads each
 * central directory entry with two reads of a few dozen bytes, and a file read per entry made a
 * 150,000-entry listing take 25 s. Memory stays one block per open zip.
 */
class BlockReader extends yauzl.RandomAccessReader {
  private block = Buffer.alloc(0);
  private blockStart = 0;
  private served = 0;

  constructor(
    private readonly fd: number,
    private readonly size: number,
  ) {
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
    const want = Math.min(Math.max(length, BLOCK), this.size - position);
    if (want < length) {
      queueMicrotask(() => callback(null, Math.max(0, want)));
      return;
    }
    const block = Buffer.allocUnsafe(want);
    read(this.fd, block, 0, want, position, (err, got) => {
      if (err) return callback(err);
      this.block = block.subarray(0, got);
      this.blockStart = position;
      const n = Math.min(length, got);
      block.copy(buffer, offset, 0, n);
      callback(null, n);
    });
  }

  override _readStreamForRange(start: number, end: number): Readable {
    return createReadStream('', { fd: this.fd, start, end: end - 1, autoClose: false });
  }

  override close(callback: (err: Error | null) => void): void {
    close(this.fd, (err) => callback(err ?? null));
  }
}

/** Opens a zip file for yauzl through the block reader (options as yauzl.open's). */
export function openZip(file: string, options: yauzl.Options): Promise<yauzl.ZipFile> {
  return new Promise((resolve, reject) => {
    open(file, 'r', (err, fd) => {
      if (err) return reject(err);
      fstat(fd, (statErr, stat) => {
        if (statErr) {
          close(fd, () => reject(statErr));
          return;
        }
        const reader = new BlockReader(fd, stat.size);
        yauzl.fromRandomAccessReader(reader, stat.size, options, (zipErr, zip) => {
          if (zipErr || !zip) {
            reader.close(() => reject(zipErr ?? new Error('unreadable zip')));
            return;
          }
          resolve(zip);
        });
      });
    });
  });
}
