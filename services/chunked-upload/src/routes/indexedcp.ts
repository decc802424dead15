import { createHash } from 'node:crypto';
import { rename } from 'node:fs/promises';
import { AppError, badRequest, conflict, parseInput, payloadTooLarge, serviceRouter } from '@qlab/kit';
import type { Request, Response, Router } from 'express';
import { z } from 'zod';
import { DEFAULT_CLIENT_FILENAME, decodeHeaderName } from '../domain/path-modes';
import type { Upload } from '../domain/upload';
import type { UploadService } from '../domain/upload-service';
import { TooManyBytes } from '../storage/data-files';
import type { ServerKeys } from '../storage/server-keys';
import { encryptedRoutes } from './indexedcp-encrypted';

const headerSchema = z.object({
  'x-chunk-index': z
    .string({ error: 'X-Chunk-Index is required' })
    .regex(/^\d{1,9}$/, 'X-Chunk-Index must be a whole number')
    .transform(Number),
  // lib/server.js: `req.headers['x-file-name'] || 'uploaded_file.txt'`.
  'x-file-name': z
    .string()
    .max(4096, 'X-File-Name is longer than 4096 bytes')
    .optional()
    .transform((v) => (v ? v : undefined)),
  'x-chunk-total': z
    .string()
    .regex(/^\d{1,9}$/, 'X-Chunk-Total must be a whole number')
    .transform(Number)
    .refine((n) => n >= 1, 'X-Chunk-Total must be at least 1')
    .optional(),
  'x-chunk-sha256': z
    .string()
    .regex(/^[0-9a-fA-F]{64}$/, 'X-Chunk-SHA256 must be 64 hex digits')
    .transform((s) => s.toLowerCase())
    .optional(),
  'x-upload-id': z
    .string()
    .regex(/^[\w.-]{1,128}$/, 'X-Upload-Id must be 1-128 letters, digits, _ . or -')
    .optional(),
});

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

async function hashBody(
  body: AsyncIterable<Buffer>,
  limit: number,
): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > limit) throw new TooManyBytes();
    hash.update(chunk);
  }
  return { sha256: hash.digest('hex'), size };
}

/**
 * POST /upload: one chunk of a file, as the IndexedCP seed sends it. Safer than the seed:
 * chunks are placed by index (out of order is fine, a repeat is stored once), an optional
 * total makes completion explicit, and an optional SHA-256 per chunk is checked.
 */
export function indexedcpRoutes(service: UploadService, encryption?: ServerKeys): Router {
  const router = serviceRouter();
  const { store, files, policy } = service;

  /**
   * How many bytes the next chunk may bring: what is left of UPLOAD_MAX_BYTES (chunks waiting
   * in buffers count as much as written ones), and of the key's open-bytes quota (IndexedCP
   * declares no length, so the quota is checked per chunk, not only at creation).
   */
  async function chunkRoom(session: Upload): Promise<{ room: number; quota: number; tooMuch: () => Error }> {
    const size = policy.maxBytes - session.offset - (await store.bufferedBytes(session.id));
    const quota =
      policy.maxOpenBytesPerKey === undefined
        ? Number.POSITIVE_INFINITY
        : policy.maxOpenBytesPerKey - (await store.openUsage(session.keyId)).bytes;
    const tooMuch = () => (quota < size ? quotaExceeded() : new TooManyBytes());
    return { room: Math.max(0, Math.min(size, quota)), quota, tooMuch };
  }
  const quotaExceeded = () =>
    new AppError(
      429,
      'QUOTA_EXCEEDED',
      `this key's unfinished uploads would hold more than ${policy.maxOpenBytesPerKey} bytes (UPLOAD_MAX_OPEN_BYTES_PER_KEY)`,
    );
  /** What writeAt's TooManyBytes means for this chunk: past the size limit, or past the quota. */
  const overLimit = (err: unknown, tooMuch: () => Error) => (err instanceof TooManyBytes ? tooMuch() : err);

  async function writeChunkInOrder(
    session: Upload,
    index: number,
    body: AsyncIterable<Buffer>,
    sha?: string,
  ): Promise<Upload> {
    const hash = createHash('sha256');
    // Bytes of a chunk that is not accepted must not stay in the file (in-place files are visible).
    const undo = () => files.truncateTo(session.dataPath, session.offset);
    const { room, tooMuch } = await chunkRoom(session);
    const result = await files
      .writeAt(session.dataPath, session.offset, body, room, [hash])
      .catch(async (err) => {
        await undo();
        throw overLimit(err, tooMuch);
      });
    if (result.interrupted) {
      await undo();
      throw new AppError(400, 'CLIENT_ABORTED', 'the chunk did not arrive whole');
    }
    const digest = hash.digest('hex');
    if (sha && sha !== digest) {
      await undo();
      throw new AppError(
        400,
        'CHECKSUM_MISMATCH',
        `chunk ${index}: SHA-256 is ${digest}, X-Chunk-SHA256 said ${sha}`,
      );
    }
    let next: Upload = { ...session, offset: session.offset + result.bytes, nextChunk: index + 1 };
    await commit(next, { uploadId: session.id, index, size: result.bytes, sha256: digest, state: 'written' });
    // Chunks that arrived early can follow now.
    for (;;) {
      const waiting = await store.chunk(session.id, next.nextChunk);
      if (!waiting || waiting.state !== 'buffered') break;
      const buffer = files.chunkBufferPath(session.id, waiting.index);
      const bytes = await files.copyInto(buffer, next.dataPath, next.offset);
      next = { ...next, offset: next.offset + bytes, nextChunk: waiting.index + 1 };
      await commit(next, { ...waiting, state: 'written' });
      await files.remove(buffer);
    }
    return next;
  }

  async function commit(next: Upload, chunk: Parameters<typeof store.putChunk>[0]): Promise<void> {
    const now = service.clock();
    await store.knex.transaction(async (trx) => {
      await store.putChunk(chunk, trx);
      await store.update(
        next.id,
        {
          offset: next.offset,
          nextChunk: next.nextChunk,
          updatedAt: now,
          expiresAt: service.expiresFrom(now),
        },
        trx,
      );
    });
  }

  async function bufferEarlyChunk(
    session: Upload,
    index: number,
    body: AsyncIterable<Buffer>,
    sha?: string,
  ): Promise<void> {
    const buffer = files.chunkBufferPath(session.id, index);
    await files.createEmpty(buffer).catch(() => undefined);
    const hash = createHash('sha256');
    const { room, quota, tooMuch } = await chunkRoom(session);
    // A waiting chunk counts as at least 4 KiB (a file and a row), empty or not.
    if (quota < BUFFERED_CHUNK_MIN_BYTES) {
      await files.remove(buffer);
      throw quotaExceeded();
    }
    const result = await files.writeAt(buffer, 0, body, room, [hash]).catch(async (err) => {
      await files.remove(buffer);
      throw overLimit(err, tooMuch);
    });
    const digest = hash.digest('hex');
    if (result.interrupted || (sha && sha !== digest)) {
      await files.remove(buffer);
      if (result.interrupted) throw new AppError(400, 'CLIENT_ABORTED', 'the chunk did not arrive whole');
      throw new AppError(
        400,
        'CHECKSUM_MISMATCH',
        `chunk ${index}: SHA-256 is ${digest}, X-Chunk-SHA256 said ${sha}`,
      );
    }
    await store.putChunk({
      uploadId: session.id,
      index,
      size: result.bytes,
      sha256: digest,
      state: 'buffered',
    });
  }

  /** A new session, its first bytes already in a staging file (legacy chunk 0) or none yet. */
  async function createSession(c: ChunkInput, id = service.newId()): Promise<Upload> {
    const target = await service.chooseTarget(c.clientFilename);
    // With a known total the file is assembled aside and published once whole; without one
    // (seed clients) it grows in place, as the seed's server did.
    const inPlace = c.total === undefined;
    return service.begin({
      id,
      protocol: 'indexedcp',
      keyId: c.keyId,
      clientFilename: c.clientFilename,
      clientUploadId: c.uploadId ?? null,
      targetPath: target,
      dataPath: inPlace ? `files/${target}` : files.stagingPath(id),
      totalChunks: c.total ?? null,
    });
  }

  const receive: ReceiveChunk = async (c) => {
    const { keyId, clientFilename, index, total } = c;
    if (total !== undefined && index >= total)
      throw badRequest(`X-Chunk-Index ${index} is not below X-Chunk-Total ${total}`);

    // All chunks of one logical upload are handled one at a time, in arrival order.
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
      let duplicate = false;
      const legacyRestart =
        session !== undefined &&
        index === 0 &&
        !c.uploadId &&
        (await store.chunk(session.id, 0)) !== undefined;

      if (legacyRestart && session) {
        // Seed semantics: chunk 0 again starts a new file, unless it repeats a lone chunk 0.
        const id = service.newId();
        // Aside from the new upload's own data path (a staged upload's is staging/<id>.bin).
        const staged = files.chunkBufferPath(id, 0);
        await files.createEmpty(staged);
        const hash = createHash('sha256');
        // The new file's first chunk counts against the key's quota like any other.
        const quota =
          policy.maxOpenBytesPerKey === undefined
            ? Number.POSITIVE_INFINITY
            : policy.maxOpenBytesPerKey - (await store.openUsage(keyId)).bytes;
        const result = await files
          .writeAt(staged, 0, c.body, Math.max(0, Math.min(policy.maxBytes, quota)), [hash])
          .catch(async (err) => {
            await files.removeChunkBuffers(id);
            throw err instanceof TooManyBytes && quota < policy.maxBytes ? quotaExceeded() : err;
          });
        const digest = hash.digest('hex');
        const first = await store.chunk(session.id, 0);
        if (result.interrupted || (c.sha256 && c.sha256 !== digest)) {
          await files.removeChunkBuffers(id);
          throw new AppError(
            400,
            result.interrupted ? 'CLIENT_ABORTED' : 'CHECKSUM_MISMATCH',
            'chunk 0 did not arrive intact',
          );
        }
        if (
          first?.sha256 === digest &&
          session.nextChunk === 1 &&
          (await store.chunks(session.id)).length === 1
        ) {
          await files.removeChunkBuffers(id);
          duplicate = true;
        } else {
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
          const fresh = await createSession(c, id).catch(async (err) => {
            await files.removeChunkBuffers(id);
            throw err;
          });
          // The staged bytes become the new file's first chunk without copying them again
          // (rename replaces the empty file begin() made, in one step).
          await rename(files.abs(staged), files.abs(fresh.dataPath));
          await files.removeChunkBuffers(id);
          session = { ...fresh, offset: result.bytes, nextChunk: 1 };
          await commit(session, {
            uploadId: id,
            index: 0,
            size: result.bytes,
            sha256: digest,
            state: 'written',
          });
        }
      } else {
        if (!session && index > MAX_CHUNKS_AHEAD)
          throw badRequest(`X-Chunk-Index ${index} is more than ${MAX_CHUNKS_AHEAD} past the first chunk`);
        if (!session && index > 0 && total === undefined && !c.uploadId) {
          // A chunk after the upload of this name already ended (idle for
          // UPLOAD_IDLE_COMPLETE_AFTER): starting a file that can never be whole would lose it.
          const ended = await store.lastEndedWithoutTotal(keyId, clientFilename);
          if (ended && (ended.completedAt ?? 0) > service.clock() - policy.expireAfterMs) {
            const had = index < ended.nextChunk ? await store.chunk(ended.id, index) : undefined;
            if (had) {
              // A late repeat of a chunk the finished file holds: it is there, say so.
              const { sha256 } = await hashBody(c.body, policy.maxBytes);
              if (sha256 !== had.sha256)
                throw conflict(`chunk ${index} was already received with different content`);
              return {
                message: 'Chunk already received',
                actualFilename: ended.targetPath,
                chunkIndex: index,
                clientFilename,
                uploadId: ended.id,
                receivedChunks: ended.nextChunk,
                bytesReceived: ended.offset,
                complete: true,
              };
            }
            throw new AppError(
              409,
              'UPLOAD_ALREADY_COMPLETE',
              `the upload of "${clientFilename}" was completed as ${ended.targetPath} after ${ended.nextChunk} chunks, when no chunk came for UPLOAD_IDLE_COMPLETE_AFTER; send the file again from chunk 0`,
            );
          }
        }
        if (!session) {
          session = await createSession(c);
          createdNow = session;
        }
        // The upload itself is held too, so a session cleanup (DELETE /sessions, the expiry
        // sweep) passes over it while a chunk is being written.
        releaseUpload = await service.locks.acquire(session.id, () => undefined, { takeOver: false });

        if (index - session.nextChunk > MAX_CHUNKS_AHEAD)
          throw badRequest(
            `X-Chunk-Index ${index} is more than ${MAX_CHUNKS_AHEAD} past the next expected chunk`,
          );
        if (total !== undefined && session.totalChunks !== null && session.totalChunks !== total) {
          throw conflict(
            `X-Chunk-Total ${total} differs from the ${session.totalChunks} this upload started with`,
          );
        }
        if (session.totalChunks !== null && index >= session.totalChunks)
          throw badRequest(
            `X-Chunk-Index ${index} is not below the ${session.totalChunks} chunks of this upload`,
          );
        if (total !== undefined && session.totalChunks === null) {
          // A total can be learnt late (not for in-place files: they never had one).
          if (!session.dataPath.startsWith('files/')) session = { ...session, totalChunks: total };
          await store.update(session.id, { totalChunks: session.totalChunks });
        }
        const known = await store.chunk(session.id, index);
        if (!known && session.status === 'complete')
          throw new AppError(409, 'UPLOAD_ALREADY_COMPLETE', `upload ${c.uploadId} is already complete`);
        if (known) {
          const { sha256 } = await hashBody(c.body, policy.maxBytes);
          if (sha256 !== known.sha256)
            throw conflict(`chunk ${index} was already received with different content`);
          duplicate = true;
        } else if (index === session.nextChunk) {
          session = await writeChunkInOrder(session, index, c.body, c.sha256);
        } else {
          await bufferEarlyChunk(session, index, c.body, c.sha256);
        }
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

  router.post('/upload', async (req: Request, res: Response) => {
    const h = parseInput(headerSchema, req.headers, 'headers');
    // enc-<session> uploads are encrypted streams: only decrypted packets may join them.
    if (h['x-upload-id']?.startsWith('enc-'))
      throw badRequest('X-Upload-Id values starting with "enc-" are reserved for encrypted uploads');
    const declared = Number(req.headers['content-length'] ?? Number.NaN);
    if (declared > policy.maxBytes) {
      res.setHeader('Connection', 'close');
      throw payloadTooLarge(`chunk is larger than UPLOAD_MAX_BYTES (${policy.maxBytes})`);
    }
    try {
      res.json(
        await receive({
          keyId: String(res.locals.keyId),
          clientFilename: h['x-file-name'] ? decodeHeaderName(h['x-file-name']) : DEFAULT_CLIENT_FILENAME,
          index: h['x-chunk-index'],
          total: h['x-chunk-total'],
          sha256: h['x-chunk-sha256'],
          uploadId: h['x-upload-id'],
          body: req,
        }),
      );
    } catch (err) {
      if (err instanceof TooManyBytes) {
        res.setHeader('Connection', 'close');
        throw payloadTooLarge(`upload is larger than UPLOAD_MAX_BYTES (${policy.maxBytes})`);
      }
      throw err;
    }
  });

  if (encryption) router.use(encryptedRoutes(encryption, receive, policy.maxBytes));

  return router;
}
