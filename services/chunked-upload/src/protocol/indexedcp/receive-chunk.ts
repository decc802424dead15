import { createHash } from 'node:crypto';
import { AppError, badRequest, conflict } from '@qlab/kit';
import type { Upload } from '../../domain/upload';
import type { UploadService } from '../../domain/upload-service';
import { TooManyBytes } from '../../storage/upload-bytes';
import type { UploadStore } from '../../storage/upload-store';
import { writeVerified } from '../../storage/verified-write';

/** One chunk as either route brings it: the raw body of POST /upload, or a decrypted packet. */
export interface ChunkInput {
  keyId: string;
  clientFilename: string;
  index: number;
  total?: number;
  sha256?: string;
  /** X-Upload-Id, or the encrypted stream's session. */
  uploadId?: string;
  body: AsyncIterable<Buffer>;
}

/**
 * The answer to a chunk. The seed's four fields ("message": "Chunk received",
 * "actualFilename", "chunkIndex", "clientFilename") come first; the rest are qlab's.
 */
export interface ChunkAnswer {
  message: string;
  actualFilename: string | null;
  chunkIndex: number;
  clientFilename: string;
  uploadId: string;
  receivedChunks: number;
  bytesReceived: number;
  complete: boolean;
}

export type ReceiveChunk = (chunk: ChunkInput) => Promise<ChunkAnswer>;

/**
 * How far past the next expected chunk one may arrive, and so how many can wait on disk per
 * upload: enough for any client sending out of order, too few to fill a disk with empty files.
 */
export const MAX_CHUNKS_AHEAD = 4096;
/** What a chunk waiting on disk counts against the open-bytes quota at least (upload-store openUsage). */
const BUFFERED_CHUNK_MIN_BYTES = 4096;

type ChunkRecord = Parameters<UploadStore['putChunk']>[0];

const aborted = () => new AppError(400, 'CLIENT_ABORTED', 'the chunk did not arrive whole');
const mismatch = (index: number) => (actual: string, expected: string) =>
  new AppError(
    400,
    'CHECKSUM_MISMATCH',
    `chunk ${index}: SHA-256 is ${actual}, X-Chunk-SHA256 said ${expected}`,
  );

async function hashBody(body: AsyncIterable<Buffer>, limit: number): Promise<string> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > limit) throw new TooManyBytes();
    hash.update(chunk);
  }
  return hash.digest('hex');
}

/**
 * One IndexedCP chunk into its upload. The seed's server appends each chunk to the file in the
 * order they come; qlab's is safer: chunks are placed by index (out of order is fine, a repeat
 * is stored once), an optional total makes completion explicit, and an optional SHA-256 per
 * chunk is checked. Chunk 0 again without an upload id starts a new file, as in the seed.
 */
export class ChunkReceiver {
  constructor(private readonly service: UploadService) {}

  private get store() {
    return this.service.store;
  }
  private get files() {
    return this.service.files;
  }
  private get policy() {
    return this.service.policy;
  }

  private quotaExceeded(): AppError {
    return new AppError(
      429,
      'QUOTA_EXCEEDED',
      `this key's unfinished uploads would hold more than ${this.policy.maxOpenBytesPerKey} bytes (UPLOAD_MAX_OPEN_BYTES_PER_KEY)`,
    );
  }

  /** What is left of the key's open-bytes quota (IndexedCP declares no length, so it is checked per chunk). */
  private async quotaLeft(keyId: string): Promise<number> {
    return this.policy.maxOpenBytesPerKey === undefined
      ? Number.POSITIVE_INFINITY
      : this.policy.maxOpenBytesPerKey - (await this.store.openUsage(keyId)).bytes;
  }

  /**
   * How many bytes the next chunk may bring: what is left of UPLOAD_MAX_BYTES (chunks waiting
   * in buffers count as much as written ones), and of the key's open-bytes quota.
   */
  private async chunkRoom(session: Upload): Promise<{ room: number; quota: number; tooMuch: () => Error }> {
    const size = this.policy.maxBytes - session.offset - (await this.store.bufferedBytes(session.id));
    const quota = await this.quotaLeft(session.keyId);
    const tooMuch = () => (quota < size ? this.quotaExceeded() : new TooManyBytes());
    return { room: Math.max(0, Math.min(size, quota)), quota, tooMuch };
  }

  /** The next expected chunk: written at the offset, then any chunks that arrived early follow. */
  private async writeInOrder(session: Upload, c: ChunkInput): Promise<Upload> {
    const { room, tooMuch } = await this.chunkRoom(session);
    const written = await writeVerified(this.files, {
      dataPath: session.dataPath,
      offset: session.offset,
      body: c.body,
      room,
      hash: { algorithm: 'sha256', encoding: 'hex', expected: c.sha256 },
      mustBeWhole: true,
      // Bytes of a chunk that is not accepted must not stay in the file (in-place files are visible).
      undo: () => this.files.truncateTo(session.dataPath, session.offset),
      refuse: { tooMany: tooMuch, aborted, mismatch: mismatch(c.index) },
    });
    let next: Upload = { ...session, offset: session.offset + written.bytes, nextChunk: c.index + 1 };
    await this.commit(next, {
      uploadId: session.id,
      index: c.index,
      size: written.bytes,
      sha256: written.digest!,
      state: 'written',
    });
    for (;;) {
      const waiting = await this.store.chunk(session.id, next.nextChunk);
      if (!waiting || waiting.state !== 'buffered') break;
      const buffer = this.files.chunkBufferPath(session.id, waiting.index);
      const bytes = await this.files.copyInto(buffer, next.dataPath, next.offset);
      next = { ...next, offset: next.offset + bytes, nextChunk: waiting.index + 1 };
      await this.commit(next, { ...waiting, state: 'written' });
      await this.files.remove(buffer);
    }
    return next;
  }

  /** A chunk and its upload's new offset, in one transaction. */
  private async commit(next: Upload, chunk: ChunkRecord): Promise<void> {
    const now = this.service.clock();
    await this.store.knex.transaction(async (trx) => {
      await this.store.putChunk(chunk, trx);
      await this.store.update(
        next.id,
        {
          offset: next.offset,
          nextChunk: next.nextChunk,
          updatedAt: now,
          expiresAt: this.service.expiresFrom(now),
        },
        trx,
      );
    });
  }

  /** A chunk that came before its turn waits in a buffer file of its own. */
  private async bufferEarly(session: Upload, c: ChunkInput): Promise<void> {
    const buffer = this.files.chunkBufferPath(session.id, c.index);
    await this.files.createEmpty(buffer).catch(() => undefined);
    const { room, quota, tooMuch } = await this.chunkRoom(session);
    // A waiting chunk counts as at least 4 KiB (a file and a row), empty or not.
    if (quota < BUFFERED_CHUNK_MIN_BYTES) {
      await this.files.remove(buffer);
      throw this.quotaExceeded();
    }
    const written = await writeVerified(this.files, {
      dataPath: buffer,
      offset: 0,
      body: c.body,
      room,
      hash: { algorithm: 'sha256', encoding: 'hex', expected: c.sha256 },
      mustBeWhole: true,
      undo: () => this.files.remove(buffer),
      refuse: { tooMany: tooMuch, aborted, mismatch: mismatch(c.index) },
    });
    await this.store.putChunk({
      uploadId: session.id,
      index: c.index,
      size: written.bytes,
      sha256: written.digest!,
      state: 'buffered',
    });
  }

  /** A new session, its first bytes already in a staging file (legacy chunk 0) or none yet. */
  private async createSession(c: ChunkInput, id = this.service.newId()): Promise<Upload> {
    const target = await this.service.chooseTarget(c.clientFilename);
    // With a known total the file is assembled aside and published once whole; without one
    // (seed clients) it grows in place, as the seed's server did.
    // In a blob store (replicas) nothing grows in place: it is staged and published when it ends.
    const inPlace = c.total === undefined && this.files.inPlace;
    return this.service.begin({
      id,
      protocol: 'indexedcp',
      keyId: c.keyId,
      clientFilename: c.clientFilename,
      clientUploadId: c.uploadId ?? null,
      targetPath: target,
      dataPath: inPlace ? `files/${target}` : this.files.stagingPath(id),
      totalChunks: c.total ?? null,
    });
  }

  /**
   * Seed semantics: chunk 0 again (no upload id) starts a new file, unless it repeats a lone
   * chunk 0. Returns the session the chunk now belongs to, and whether it was a repeat.
   */
  private async restartLegacy(
    session: Upload,
    c: ChunkInput,
  ): Promise<{ session: Upload; duplicate: boolean }> {
    const { service, files, store, policy } = this;
    const id = service.newId();
    // Aside from the new upload's own data path (a staged upload's is staging/<id>.bin).
    const staged = files.chunkBufferPath(id, 0);
    await files.createEmpty(staged);
    // The new file's first chunk counts against the key's quota like any other.
    const quota = await this.quotaLeft(c.keyId);
    const written = await writeVerified(files, {
      dataPath: staged,
      offset: 0,
      body: c.body,
      room: Math.max(0, Math.min(policy.maxBytes, quota)),
      hash: { algorithm: 'sha256', encoding: 'hex', expected: c.sha256 },
      mustBeWhole: true,
      undo: () => files.removeChunkBuffers(id),
      refuse: {
        tooMany: () => (quota < policy.maxBytes ? this.quotaExceeded() : new TooManyBytes()),
        aborted: () => new AppError(400, 'CLIENT_ABORTED', 'chunk 0 did not arrive intact'),
        mismatch: () => new AppError(400, 'CHECKSUM_MISMATCH', 'chunk 0 did not arrive intact'),
      },
    });
    const first = await store.chunk(session.id, 0);
    if (
      first?.sha256 === written.digest &&
      session.nextChunk === 1 &&
      (await store.chunks(session.id)).length === 1
    ) {
      await files.removeChunkBuffers(id);
      return { session, duplicate: true };
    }
    // The previous upload of this name is over: what it received is its file (or, with a
    // chunk missing, nothing). Ending it first frees its name for the new one.
    if (session.totalChunks === null) {
      const releaseOld = await service.locks.acquire(session.id, () => undefined, { takeOver: false });
      try {
        await service.finishWithoutTotal(session);
      } finally {
        releaseOld();
      }
    }
    // A refused session (quota, name) must not leave the staged chunk behind.
    const fresh = await this.createSession(c, id).catch(async (err) => {
      await files.removeChunkBuffers(id);
      throw err;
    });
    // The staged bytes become the new file's first chunk without copying them again
    // (the move replaces the empty data begin() made).
    await files.move(staged, fresh.dataPath);
    await files.removeChunkBuffers(id);
    const next = { ...fresh, offset: written.bytes, nextChunk: 1 };
    await this.commit(next, {
      uploadId: id,
      index: 0,
      size: written.bytes,
      sha256: written.digest!,
      state: 'written',
    });
    return { session: next, duplicate: false };
  }

  /**
   * A chunk after the upload of this name already ended (idle for UPLOAD_IDLE_COMPLETE_AFTER):
   * a late repeat of a chunk the finished file holds is answered as received; anything else is
   * refused, since starting a file that can never be whole would lose it. Undefined: no such upload.
   */
  private async afterIdleEnd(c: ChunkInput): Promise<ChunkAnswer | undefined> {
    const ended = await this.store.lastEndedWithoutTotal(c.keyId, c.clientFilename);
    if (!ended || (ended.completedAt ?? 0) <= this.service.clock() - this.policy.expireAfterMs)
      return undefined;
    const had = c.index < ended.nextChunk ? await this.store.chunk(ended.id, c.index) : undefined;
    if (!had)
      throw new AppError(
        409,
        'UPLOAD_ALREADY_COMPLETE',
        `the upload of "${c.clientFilename}" was completed as ${ended.targetPath} after ${ended.nextChunk} chunks, when no chunk came for UPLOAD_IDLE_COMPLETE_AFTER; send the file again from chunk 0`,
      );
    if ((await hashBody(c.body, this.policy.maxBytes)) !== had.sha256)
      throw conflict(`chunk ${c.index} was already received with different content`);
    return {
      message: 'Chunk already received',
      actualFilename: ended.targetPath,
      chunkIndex: c.index,
      clientFilename: c.clientFilename,
      uploadId: ended.id,
      receivedChunks: ended.nextChunk,
      bytesReceived: ended.offset,
      complete: true,
    };
  }

  /** A chunk into an existing (or, when `createdNow`, just created) session, held by the caller. */
  private async intoSession(
    session: Upload,
    c: ChunkInput,
  ): Promise<{ session: Upload; duplicate: boolean }> {
    const { index, total } = c;
    if (index - session.nextChunk > MAX_CHUNKS_AHEAD)
      throw badRequest(
        `X-Chunk-Index ${index} is more than ${MAX_CHUNKS_AHEAD} past the next expected chunk`,
      );
    if (total !== undefined && session.totalChunks !== null && session.totalChunks !== total)
      throw conflict(
        `X-Chunk-Total ${total} differs from the ${session.totalChunks} this upload started with`,
      );
    if (session.totalChunks !== null && index >= session.totalChunks)
      throw badRequest(
        `X-Chunk-Index ${index} is not below the ${session.totalChunks} chunks of this upload`,
      );
    if (total !== undefined && session.totalChunks === null) {
      // A total can be learnt late (not for in-place files: they never had one).
      if (!session.dataPath.startsWith('files/')) session = { ...session, totalChunks: total };
      await this.store.update(session.id, { totalChunks: session.totalChunks });
    }
    const known = await this.store.chunk(session.id, index);
    if (!known && session.status === 'complete')
      throw new AppError(409, 'UPLOAD_ALREADY_COMPLETE', `upload ${c.uploadId} is already complete`);
    if (known) {
      if ((await hashBody(c.body, this.policy.maxBytes)) !== known.sha256)
        throw conflict(`chunk ${index} was already received with different content`);
      return { session, duplicate: true };
    }
    if (index === session.nextChunk)
      return { session: await this.writeInOrder(session, c), duplicate: false };
    await this.bufferEarly(session, c);
    return { session, duplicate: false };
  }

  /** Receives one chunk; all chunks of one logical upload are handled one at a time, in arrival order. */
  readonly receive: ReceiveChunk = async (c) => {
    const { service, store } = this;
    const { keyId, clientFilename, index, total } = c;
    if (total !== undefined && index >= total)
      throw badRequest(`X-Chunk-Index ${index} is not below X-Chunk-Total ${total}`);

    const release = await service.locks.acquire(
      service.indexedcpLock(keyId, c.uploadId ?? null, clientFilename),
      () => undefined,
      { takeOver: false },
    );
    // A session this request made, ended again if its first chunk is refused: a refused
    // request leaves no session holding the name, and no file.
    let createdNow: Upload | undefined;
    let releaseUpload: (() => void) | undefined;
    try {
      let session = await store.findIndexedcp(keyId, clientFilename, c.uploadId ?? null);
      let duplicate: boolean;
      const legacyRestart =
        session !== undefined &&
        index === 0 &&
        !c.uploadId &&
        (await store.chunk(session.id, 0)) !== undefined;
      if (legacyRestart && session) {
        ({ session, duplicate } = await this.restartLegacy(session, c));
      } else {
        if (!session && index > MAX_CHUNKS_AHEAD)
          throw badRequest(`X-Chunk-Index ${index} is more than ${MAX_CHUNKS_AHEAD} past the first chunk`);
        if (!session && index > 0 && total === undefined && !c.uploadId) {
          const answer = await this.afterIdleEnd(c);
          if (answer) return answer;
        }
        if (!session) {
          session = await this.createSession(c);
          createdNow = session;
        }
        // The upload itself is held too, so a session cleanup (DELETE /sessions, the expiry
        // sweep) passes over it while a chunk is being written.
        releaseUpload = await service.locks.acquire(session.id, () => undefined, { takeOver: false });
        ({ session, duplicate } = await this.intoSession(session, c));
      }

      const complete =
        session.totalChunks !== null &&
        session.nextChunk === session.totalChunks &&
        session.status === 'active';
      if (complete) session = await service.complete(session);
      return {
        message: duplicate ? 'Chunk already received' : 'Chunk received',
        actualFilename: session.targetPath,
        chunkIndex: index,
        clientFilename,
        uploadId: session.id,
        receivedChunks: session.nextChunk,
        bytesReceived: session.offset,
        complete: session.status === 'complete',
      };
    } catch (err) {
      if (createdNow && (await store.chunks(createdNow.id)).length === 0) await service.abandon(createdNow);
      throw err;
    } finally {
      releaseUpload?.();
      release();
    }
  };
}
