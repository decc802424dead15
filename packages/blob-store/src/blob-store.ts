import type { Readable } from 'node:stream';

/** What a store knows of one object. */
export interface BlobInfo {
  key: string;
  size: number;
  modified: Date;
}

/** An inclusive byte range, as HTTP's Range has it; `end` absent means to the end. */
export interface ByteRange {
  start: number;
  end?: number;
}

/**
 * Bytes by key, streamed both ways. A put is visible only once whole: a failed or aborted put
 * leaves the old object (or none), never part of the new one. Keys are relative paths of
 * safe segments (`assertBlobKey`); both implementations refuse anything else.
 */
export interface BlobStore {
  /** Where the bytes live, without secrets (`file:///…`, `s3://bucket/prefix`). */
  readonly location: string;
  put(key: string, body: Readable, options?: { contentType?: string }): Promise<BlobInfo>;
  /**
   * Stores a local file (an upload checked in a temp file) under `key` and takes it: once this
   * resolves the file is gone. The filesystem store renames it (no copy), S3 uploads and
   * removes it. When this rejects the file may still be there, for the caller to remove.
   */
  moveFile(key: string, file: string, options?: { contentType?: string }): Promise<BlobInfo>;
  /** The object's bytes, or a range of them; undefined when there is no such object. */
  get(key: string, range?: ByteRange): Promise<Readable | undefined>;
  head(key: string): Promise<BlobInfo | undefined>;
  /** Removes the object; removing one that is not there is not an error. */
  delete(key: string): Promise<void>;
  /** Every object whose key starts with `prefix`, in key order. */
  list(prefix?: string): AsyncIterable<BlobInfo>;
}

/** Letters, digits and `._-=` (`=` for Hive partitions, `day=2026-12-01`), not starting with `.`, `-` or `=`. */
const SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9._=-]*$/;
export const MAX_KEY_BYTES = 1024;

/** Refuses a key that is not a relative path of safe segments (no `..`, `.`, empty or hidden ones). */
export function assertBlobKey(key: string): void {
  if (typeof key !== 'string' || key.length === 0 || Buffer.byteLength(key) > MAX_KEY_BYTES)
    throw new RangeError(`blob key must be 1-${MAX_KEY_BYTES} bytes`);
  for (const segment of key.split('/'))
    if (!SEGMENT.test(segment))
      throw new RangeError(
        `blob key ${JSON.stringify(key.slice(0, 80))}: each segment is letters, digits, "._-=", not starting with ".", "-" or "="`,
      );
}

/** A prefix to list: empty, or a key, or a key ending in "/". */
export function assertBlobPrefix(prefix: string): void {
  if (prefix === '') return;
  assertBlobKey(prefix.endsWith('/') ? prefix.slice(0, -1) : prefix);
}

/** The range check both stores share: whole numbers, start ≤ end. */
export function assertRange(range: ByteRange): void {
  const { start, end } = range;
  if (
    !Number.isSafeInteger(start) ||
    start < 0 ||
    (end !== undefined && (!Number.isSafeInteger(end) || end < start))
  )
    throw new RangeError(`bad byte range ${start}-${end ?? ''}`);
}
