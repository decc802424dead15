import { type BinaryToTextEncoding, createHash } from 'node:crypto';
import { TooManyBytes, type UploadBytes } from './upload-bytes';

/** What a body must be for its bytes to be kept, and how to take them back when it is not. */
export interface VerifiedWrite {
  dataPath: string;
  offset: number;
  body: AsyncIterable<Buffer>;
  /** Bytes the body may bring; past this the write stops and `refuse.tooMany()` is thrown. */
  room: number;
  /** Hash the body; without it nothing is hashed (a tus PATCH with no Upload-Checksum). */
  hash?: { algorithm: string; encoding: BinaryToTextEncoding; expected?: string };
  /** A body that stops early is refused (IndexedCP chunks, checksummed tus bodies) rather than kept. */
  mustBeWhole: boolean;
  /** Takes a refused body's bytes back out of the file: truncate to the old offset, or remove. */
  undo: () => Promise<void>;
  refuse: {
    tooMany: () => Error;
    aborted: () => Error;
    mismatch: (actual: string, expected: string) => Error;
  };
}

export interface VerifiedBytes {
  bytes: number;
  /** The body's digest, when `hash` was given. */
  digest?: string;
}

/**
 * The one write → hash → compare → undo path every protocol uses: the bytes are written and
 * fsynced at `offset`, then kept only if they arrived whole (when that is required) and match
 * the expected digest. A refused body leaves the file as it was before the write.
 */
export async function writeVerified(files: UploadBytes, w: VerifiedWrite): Promise<VerifiedBytes> {
  const hasher = w.hash ? createHash(w.hash.algorithm) : undefined;
  const result = await files
    .writeAt(w.dataPath, w.offset, w.body, w.room, hasher ? [hasher] : [])
    .catch(async (err) => {
      await w.undo();
      throw err instanceof TooManyBytes ? w.refuse.tooMany() : err;
    });
  if (result.interrupted && w.mustBeWhole) {
    await w.undo();
    throw w.refuse.aborted();
  }
  const digest = hasher && w.hash ? hasher.digest(w.hash.encoding) : undefined;
  if (digest !== undefined && w.hash?.expected !== undefined && digest !== w.hash.expected) {
    await w.undo();
    throw w.refuse.mismatch(digest, w.hash.expected);
  }
  return { bytes: result.bytes, digest };
}
