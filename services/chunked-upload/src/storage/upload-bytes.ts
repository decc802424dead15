import type { Hash } from 'node:crypto';

export interface WriteResult {
  /** Bytes written and made durable. */
  bytes: number;
  /** The body stopped early (client gone); `bytes` still counts what arrived. */
  interrupted: boolean;
}

/** Bytes beyond this many are refused mid-stream (the caller turns it into 413). */
export class TooManyBytes extends Error {}

/**
 * Where upload bytes live while they arrive and once finished: local files (DataFiles, the
 * default) or a blob store shared by replicas (BlobUploadBytes). `dataPath`s are relative:
 * `staging/<id>.bin` while an upload arrives, `staging/<id>.chunks/<n>.part` for IndexedCP
 * chunks that came early, `files/…` for seed-style uploads written in place (local files only).
 */
export interface UploadBytes {
  /** Where finished files go, for /info (a folder, or `s3://bucket/prefix/files`). */
  readonly uploadDir: string;
  /** Whether a seed-style upload (no X-Chunk-Total) may grow in place where it will end. */
  readonly inPlace: boolean;
  /** Whether uploads are written with O_DIRECT. */
  readonly directWrites: boolean;
  init(): Promise<void>;
  close(): Promise<void>;
  stagingPath(id: string): string;
  chunkBufferPath(id: string, index: number): string;
  /** Refuses a target name that cannot be stored (leads outside the upload dir; too long a key). */
  checkTargetFolder(relInUploadDir: string): Promise<void>;
  /** The first folder of `rel` that exists as a file. */
  fileOnTheWay(rel: string): Promise<string | undefined>;
  existsInUploadDir(rel: string): Promise<boolean>;
  createEmpty(dataPath: string): Promise<void>;
  /**
   * Writes a body at `offset` (the data's current end), hashing as it goes; what it reports is
   * durable when it returns. Stops with TooManyBytes past `limit`. A body that ends early keeps
   * what arrived.
   */
  writeAt(
    dataPath: string,
    offset: number,
    body: AsyncIterable<Buffer>,
    limit: number,
    hashes?: Hash[],
  ): Promise<WriteResult>;
  /** Appends all of `fromDataPath` at `offset` of `dataPath`; answers the bytes appended. */
  copyInto(fromDataPath: string, dataPath: string, offset: number): Promise<number>;
  /** Moves bytes from one data path to another, replacing what was there. */
  move(fromDataPath: string, toDataPath: string): Promise<void>;
  /** Publishes the first `length` bytes as `targetRel` in the upload dir, never over another file (409). */
  publish(dataPath: string, targetRel: string, length: number): Promise<void>;
  /** Cuts the data back to `length` bytes. */
  truncateTo(dataPath: string, length: number): Promise<void>;
  remove(dataPath: string): Promise<void>;
  removeChunkBuffers(id: string): Promise<void>;
  /** Staging entries untouched for `olderThanMs`, with their upload ids. */
  staleStaging(olderThanMs: number, now?: number): Promise<{ entry: string; id: string }[]>;
  removeStaging(entry: string): Promise<void>;
}
