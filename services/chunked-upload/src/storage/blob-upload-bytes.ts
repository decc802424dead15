import type { Hash } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import type { BlobInfo, BlobStore } from '@qlab/blob-store';
import { conflict } from '@qlab/kit';
import { PathRefused } from '../domain/path-modes';
import { objectKeyOf } from './object-names';
import { TooManyBytes, type UploadBytes, type WriteResult } from './upload-bytes';

/** Segment objects are named by their offset, zero-padded so key order is offset order. */
const OFFSET_DIGITS = 16;
const segmentKey = (dataPath: string, offset: number) =>
  `${dataPath}/${String(offset).padStart(OFFSET_DIGITS, '0')}`;

interface Segment {
  key: string;
  offset: number;
  size: number;
}

/**
 * Upload bytes in a blob store (S3, or a folder shared by replicas), so any replica can continue
 * any upload. An upload's data is a chain of *segments*: each write (a tus PATCH, an IndexedCP
 * chunk) becomes one object `<dataPath>/<offset>`, streamed in with bounded memory (the S3 store
 * sends 8 MiB parts, at most four at a time) and visible only once whole, so what a write
 * reports is durable when it returns. The chain is the segments from offset 0 each starting
 * where the last ended: a segment a crash left past the acknowledged offset is written over by
 * the client's next write at that offset (same key), or ignored and removed.
 *
 * Finishing streams the chain into one object `files/<name>` (objectKeyOf) and removes the
 * segments: the finished file is one object, as @tus/s3-store leaves it, never overwriting another.
 */
export class BlobUploadBytes implements UploadBytes {
  readonly inPlace = false;
  readonly directWrites = false;
  readonly uploadDir: string;

  constructor(private readonly blobs: BlobStore) {
    this.uploadDir = `${blobs.location}/files`;
  }

  async init(): Promise<void> {
    // Reachable and listable now, not at the first upload.
    for await (const _ of this.blobs.list('staging/')) break;
  }

  async close(): Promise<void> {}

  stagingPath(id: string): string {
    return `staging/${id}.bin`;
  }

  chunkBufferPath(id: string, index: number): string {
    return `staging/${id}.chunks/${index}.part`;
  }

  private async segments(dataPath: string): Promise<Segment[]> {
    const out: Segment[] = [];
    for await (const o of this.blobs.list(`${dataPath}/`)) {
      const name = o.key.slice(dataPath.length + 1);
      if (/^\d{16}$/.test(name)) out.push({ key: o.key, offset: Number(name), size: o.size });
    }
    return out;
  }

  /** The segments that make the data, in order; the rest (past a crash) are stale. */
  private async chain(dataPath: string): Promise<{ chain: Segment[]; stale: Segment[]; end: number }> {
    const all = await this.segments(dataPath);
    const byOffset = new Map(all.map((s) => [s.offset, s]));
    const chain: Segment[] = [];
    let end = 0;
    for (let s = byOffset.get(0); s && s.size > 0; s = byOffset.get(end)) {
      chain.push(s);
      end += s.size;
    }
    const inChain = new Set(chain.map((s) => s.key));
    return { chain, stale: all.filter((s) => !inChain.has(s.key)), end };
  }

  async checkTargetFolder(relInUploadDir: string): Promise<void> {
    try {
      objectKeyOf(relInUploadDir);
    } catch (err) {
      throw new PathRefused(`"${relInUploadDir}" cannot be stored: ${(err as Error).message}`);
    }
  }

  async fileOnTheWay(rel: string): Promise<string | undefined> {
    const parts = rel.split('/');
    for (let i = 1; i < parts.length; i++) {
      const sub = parts.slice(0, i).join('/');
      if (await this.blobs.head(objectKeyOf(sub))) return sub;
    }
    return undefined;
  }

  async existsInUploadDir(rel: string): Promise<boolean> {
    return (await this.blobs.head(objectKeyOf(rel))) !== undefined;
  }

  /** An empty chain is empty data: nothing to create. */
  async createEmpty(_dataPath: string): Promise<void> {}

  async writeAt(
    dataPath: string,
    offset: number,
    body: AsyncIterable<Buffer>,
    limit: number,
    hashes: Hash[] = [],
  ): Promise<WriteResult> {
    const key = segmentKey(dataPath, offset);
    const pipe = new PassThrough();
    let bytes = 0;
    let interrupted = false;
    let refused: unknown;
    // Room in the pipe again, or the store stopped reading it (its put failed).
    const room = () =>
      new Promise<void>((resolve) => {
        const done = () => {
          pipe.off('drain', done);
          pipe.off('close', done);
          resolve();
        };
        pipe.once('drain', done);
        pipe.once('close', done);
      });
    const feeding = (async () => {
      try {
        for await (const chunk of body) {
          if (pipe.destroyed) return;
          if (bytes + chunk.length > limit) throw new TooManyBytes();
          for (const h of hashes) h.update(chunk);
          bytes += chunk.length;
          if (!pipe.write(chunk)) await room();
        }
      } catch (err) {
        // Too many bytes: nothing is stored. A client that went away: what came is kept (tus
        // "SHOULD ... store as much of the received data as possible").
        if (err instanceof TooManyBytes) {
          refused = err;
          pipe.destroy(err);
          return;
        }
        interrupted = true;
      }
      pipe.end();
    })();
    let stored: BlobInfo | undefined;
    try {
      stored = await this.blobs.put(key, pipe, { contentType: 'application/octet-stream' });
    } catch (err) {
      pipe.destroy();
      await feeding;
      throw refused ?? err;
    }
    await feeding;
    if (refused) {
      await this.blobs.delete(key);
      throw refused;
    }
    if (stored.size !== bytes)
      throw new Error(`segment ${key} holds ${stored.size} bytes, ${bytes} were sent`);
    if (bytes === 0) await this.blobs.delete(key);
    return { bytes, interrupted };
  }

  async copyInto(fromDataPath: string, dataPath: string, offset: number): Promise<number> {
    const { chain, end } = await this.chain(fromDataPath);
    const result = await this.writeAt(dataPath, offset, this.read(chain, end), Number.MAX_SAFE_INTEGER);
    return result.bytes;
  }

  async move(fromDataPath: string, toDataPath: string): Promise<void> {
    await this.remove(toDataPath);
    await this.copyInto(fromDataPath, toDataPath, 0);
    await this.remove(fromDataPath);
  }

  /** The chain's bytes up to `length`, segment after segment. */
  private async *read(chain: Segment[], length: number): AsyncGenerator<Buffer> {
    for (const s of chain) {
      if (s.offset >= length) return;
      const last = Math.min(s.offset + s.size, length) - 1;
      const body = await this.blobs.get(s.key, { start: 0, end: last - s.offset });
      if (!body) throw new Error(`segment ${s.key} is gone`);
      for await (const piece of body) yield piece as Buffer;
    }
  }

  async publish(dataPath: string, targetRel: string, length: number): Promise<void> {
    const key = objectKeyOf(targetRel);
    const { chain, end } = await this.chain(dataPath);
    const there = await this.blobs.head(key);
    if (there) {
      // Published by an earlier attempt whose commit failed (or whose process died): its
      // segments are gone and the object holds the bytes. Otherwise the name is another file's.
      if (chain.length === 0 && there.size === length) return;
      throw conflict(`"${targetRel}" already exists`);
    }
    if (end < length)
      throw new Error(`the data of ${targetRel} holds ${end} bytes, not the ${length} acknowledged`);
    const info = await this.blobs.put(key, Readable.from(this.read(chain, length)), {
      contentType: 'application/octet-stream',
    });
    if (info.size !== length) {
      await this.blobs.delete(key);
      throw new Error(`publishing ${targetRel} stored ${info.size} bytes, not ${length}`);
    }
    await this.remove(dataPath);
  }

  async truncateTo(dataPath: string, length: number): Promise<void> {
    const { chain, stale } = await this.chain(dataPath);
    for (const s of [...chain, ...stale]) {
      if (s.offset >= length) await this.blobs.delete(s.key);
      else if (s.offset + s.size > length) {
        // Only after a crash: a segment across the cut keeps its head, rewritten under its key.
        const head = await this.blobs.get(s.key, { start: 0, end: length - s.offset - 1 });
        if (head) await this.blobs.put(s.key, head);
      }
    }
  }

  async remove(dataPath: string): Promise<void> {
    for (const s of await this.segments(dataPath)) await this.blobs.delete(s.key);
  }

  async removeChunkBuffers(id: string): Promise<void> {
    await this.removeStaging(`${id}.chunks`);
  }

  async staleStaging(olderThanMs: number, now = Date.now()): Promise<{ entry: string; id: string }[]> {
    const newest = new Map<string, { id: string; at: number }>();
    for await (const o of this.blobs.list('staging/')) {
      const m = /^staging\/(([0-9a-f]{32})\.(bin|chunks))\//.exec(o.key);
      if (!m) continue;
      const at = o.modified.getTime();
      const seen = newest.get(m[1]!);
      if (!seen || seen.at < at) newest.set(m[1]!, { id: m[2]!, at });
    }
    return [...newest].filter(([, v]) => now - v.at > olderThanMs).map(([entry, v]) => ({ entry, id: v.id }));
  }

  async removeStaging(entry: string): Promise<void> {
    if (!/^[0-9a-f]{32}\.(bin|chunks)$/.test(entry)) throw new RangeError(`not a staging entry: ${entry}`);
    for await (const o of this.blobs.list(`staging/${entry}/`)) await this.blobs.delete(o.key);
  }
}
