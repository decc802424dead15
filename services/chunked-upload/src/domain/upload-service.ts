import { randomBytes } from 'node:crypto';
import type { Outbox } from '@qlab/events';
import { AppError, coerceError, conflict, type Knex, type Logger } from '@qlab/kit';
import type { UploadEvents } from '../events';
import type { UploadBytes } from '../storage/upload-bytes';
import type { UploadStore } from '../storage/upload-store';
import { type PathMode, targetPathFor, withClashSuffix } from './path-modes';
import type { Upload } from './upload';
import { type Locks, UploadLocks } from './upload-locks';

export interface UploadPolicy {
  pathMode: PathMode;
  /** Refuse names only Windows forbids (UPLOAD_WINDOWS_SAFE_NAMES). */
  windowsSafeNames?: boolean;
  /** Largest upload in bytes. */
  maxBytes: number;
  /** An unfinished upload untouched this long expires and its bytes are removed. */
  expireAfterMs: number;
  /**
   * An IndexedCP upload without X-Chunk-Total (the original client sends none, and no end
   * marker) is complete once no chunk has come for this long (UPLOAD_IDLE_COMPLETE_AFTER).
   */
  idleCompleteAfterMs?: number;
  /** Unfinished uploads one owner may hold at once (UPLOAD_MAX_SESSIONS_PER_KEY). */
  maxSessionsPerKey?: number;
  /** Bytes one owner's unfinished uploads may declare (or hold) together (UPLOAD_MAX_OPEN_BYTES_PER_KEY). */
  maxOpenBytesPerKey?: number;
}

export interface UploadServiceDeps {
  store: UploadStore;
  files: UploadBytes;
  outbox?: Outbox<UploadEvents>;
  logger: Logger;
  policy: UploadPolicy;
  now?: () => number;
  /** One writer per upload: in this process (default), or across replicas (ReplicaUploadLocks). */
  locks?: Locks;
}

/** What both protocols share: naming, creating, completing, terminating and expiring uploads. */
export class UploadService {
  readonly locks: Locks;
  readonly store: UploadStore;
  readonly files: UploadBytes;
  readonly policy: UploadPolicy;
  private readonly now: () => number;

  constructor(private readonly deps: UploadServiceDeps) {
    this.store = deps.store;
    this.locks = deps.locks ?? new UploadLocks();
    this.files = deps.files;
    this.policy = deps.policy;
    this.now = deps.now ?? Date.now;
  }

  clock(): number {
    return this.now();
  }

  newId(): string {
    return randomBytes(16).toString('hex');
  }

  /**
   * Picks where a client's file will land. Names that are taken (on disk, or by an active upload)
   * get the seed's timestamp suffix; in allow-paths mode a path another active upload is writing
   * is refused with 409, so two uploads never write one target.
   */
  async chooseTarget(clientFilename: string): Promise<string> {
    const wanted = targetPathFor(
      { mode: this.policy.pathMode, windowsSafe: this.policy.windowsSafeNames },
      clientFilename,
      this.now(),
    );
    // A folder that leads out of the upload dir (a symbolic link) is refused now, before any
    // session or file exists, rather than when the finished upload is published.
    await this.files.checkTargetFolder(wanted);
    if (this.policy.pathMode === 'allow-paths') {
      if (await this.store.targetTaken(wanted))
        throw conflict(`another upload to "${wanted}" is in progress`);
      // A file and a folder of one name cannot both be: refuse now, not when publishing fails.
      const nested = await this.store.nestedTargetTaken(wanted);
      if (nested)
        throw conflict(`"${wanted}" and "${nested}", which another upload is writing, cannot both exist`);
      const blocking = await this.files.fileOnTheWay(wanted);
      if (blocking) throw conflict(`"${blocking}" is a file, so "${wanted}" cannot be created`);
    }
    for (let attempt = 0; attempt < 20; attempt++) {
      const candidate = attempt === 0 ? wanted : withClashSuffix(wanted, this.now(), attempt - 1);
      if (!(await this.files.existsInUploadDir(candidate)) && !(await this.store.targetTaken(candidate)))
        return candidate;
    }
    throw conflict(`could not find a free name for "${wanted}"`);
  }

  expiresFrom(t: number): number {
    return t + this.policy.expireAfterMs;
  }

  /**
   * Records a new active upload and creates its empty data file. If the file cannot be created
   * the record is ended at once, so no session points at nothing.
   */
  async begin(
    fields: Pick<Upload, 'id' | 'protocol' | 'keyId' | 'clientFilename' | 'targetPath' | 'dataPath'> &
      Partial<Upload>,
  ): Promise<Upload> {
    await this.checkQuota(fields.keyId, fields.length ?? 0);
    const now = this.now();
    const upload: Upload = {
      clientUploadId: null,
      offset: 0,
      length: null,
      metadata: {},
      concat: null,
      concatParts: [],
      totalChunks: null,
      nextChunk: 0,
      ...fields,
      status: 'active',
      createdAt: now,
      updatedAt: now,
      expiresAt: this.expiresFrom(now),
      completedAt: null,
    };
    await this.store.create(upload);
    try {
      await this.files.createEmpty(upload.dataPath);
    } catch (err) {
      await this.store.update(upload.id, { status: 'terminated' });
      throw err;
    }
    return upload;
  }

  /**
   * One owner cannot hold the disk: a cap on open sessions and on the bytes they declare.
   * Checked at creation (two creations at the same instant may both pass; the cap is a guard,
   * not an accounting). Over it: 429 QUOTA_EXCEEDED, and finishing or deleting uploads frees room.
   */
  private async checkQuota(keyId: string, declared: number): Promise<void> {
    const { maxSessionsPerKey, maxOpenBytesPerKey } = this.policy;
    if (maxSessionsPerKey === undefined && maxOpenBytesPerKey === undefined) return;
    const open = await this.store.openUsage(keyId);
    if (maxSessionsPerKey !== undefined && open.sessions >= maxSessionsPerKey)
      throw new AppError(
        429,
        'QUOTA_EXCEEDED',
        `this key has ${open.sessions} unfinished uploads, the most allowed (UPLOAD_MAX_SESSIONS_PER_KEY); finish or delete some`,
      );
    if (maxOpenBytesPerKey !== undefined && open.bytes + declared > maxOpenBytesPerKey)
      throw new AppError(
        429,
        'QUOTA_EXCEEDED',
        `this key's unfinished uploads would hold ${open.bytes + declared} bytes, above ${maxOpenBytesPerKey} (UPLOAD_MAX_OPEN_BYTES_PER_KEY)`,
      );
  }

  /**
   * Ends an upload whose creating request was refused, so nothing of it stays: no session
   * holding its name, no staged or empty in-place file.
   */
  async abandon(upload: Upload): Promise<void> {
    // It never held anything a client was told about: its bytes go, then its record, in one
    // step (never a "terminated" row that a count could see come and go).
    if (!upload.dataPath.startsWith('files/') || upload.offset === 0)
      await this.files.remove(upload.dataPath).catch(() => undefined);
    await this.files.removeChunkBuffers(upload.id);
    await this.store.remove(upload.id);
  }

  /**
   * Publishes the finished bytes and marks the upload complete, with its event, once. If the
   * target name was taken meanwhile (another process, a person), a suffixed name is used.
   */
  async complete(upload: Upload): Promise<Upload> {
    let target = upload.targetPath;
    if (target === null) throw new Error(`upload ${upload.id} has no target`);
    const length = upload.offset;
    // Bytes a crash left past the acknowledged offset are not part of the file.
    if (upload.dataPath.startsWith('files/')) await this.files.truncateTo(upload.dataPath, length);
    else {
      for (let attempt = 0; ; attempt++) {
        try {
          await this.files.publish(upload.dataPath, target, length);
          break;
        } catch (err) {
          if (!(err instanceof AppError && err.status === 409) || attempt >= 5) throw err;
          target = withClashSuffix(upload.targetPath!, this.now(), attempt);
        }
      }
    }
    const now = this.now();
    const done: Upload = {
      ...upload,
      targetPath: target,
      dataPath: upload.dataPath.startsWith('files/') ? upload.dataPath : `files/${target}`,
      status: 'complete',
      completedAt: now,
      updatedAt: now,
    };
    await this.store.knex.transaction(async (trx) => {
      await this.store.update(
        upload.id,
        {
          targetPath: done.targetPath,
          dataPath: done.dataPath,
          status: 'complete',
          completedAt: now,
          updatedAt: now,
        },
        trx,
      );
      await this.deps.outbox?.record(trx, 'upload.completed', `uploads/${upload.id}`, {
        id: upload.id,
        protocol: upload.protocol,
        filename: target,
        clientFilename: upload.clientFilename,
        size: length,
        metadata: upload.metadata,
      });
    });
    this.deps.outbox?.written();
    await this.files.removeChunkBuffers(upload.id);
    this.deps.logger.info({ id: upload.id, target, size: length }, 'upload complete');
    return done;
  }

  /**
   * The lock every chunk of one IndexedCP upload is handled under: one logical upload is a
   * key plus its X-Upload-Id, or plus its file name when the client sends no id.
   */
  indexedcpLock(keyId: string, clientUploadId: string | null, clientFilename: string): string {
    return `icp:${keyId}:${clientUploadId ?? clientFilename}`;
  }

  /**
   * Ends an upload that never declared a total: what arrived is the file (idle, or the client
   * began the name anew with chunk 0). If chunks are still missing in between, the file is not
   * whole and must not be published as if it were: it is removed and the upload terminated.
   * The caller holds the upload's lock.
   */
  async finishWithoutTotal(upload: Upload): Promise<Upload | undefined> {
    const chunks = await this.store.chunks(upload.id);
    if (chunks.some((c) => c.state === 'buffered')) {
      await this.end(upload, 'terminated');
      this.deps.logger.warn(
        { id: upload.id, missing: upload.nextChunk },
        'upload without total ended with a chunk missing; its partial file was removed',
      );
      return undefined;
    }
    return this.complete(upload);
  }

  /**
   * Completes uploads without a total that have been idle for idleCompleteAfterMs and hold every
   * chunk up to the last one that came. Returns how many.
   */
  async sweepIdle(): Promise<number> {
    const idleMs = this.policy.idleCompleteAfterMs;
    if (idleMs === undefined) return 0;
    let count = 0;
    for (const found of await this.store.idleWithoutTotal(this.now() - idleMs)) {
      const lock = this.indexedcpLock(found.keyId, found.clientUploadId, found.clientFilename);
      // A chunk is arriving (however slowly): not idle, and never waited for, so one slow
      // client cannot hold the sweep for everyone else.
      // On PostgreSQL the lock is tried across replicas: a chunk arriving on another is seen too.
      if (this.locks.isHeld(found.id)) continue;
      const release = await this.locks.tryAcquire(lock);
      if (!release) continue;
      try {
        // A chunk may have come while we waited for the lock.
        const upload = await this.store.get(found.id);
        if (upload?.status !== 'active' || upload.updatedAt >= this.now() - idleMs) continue;
        // A gap means a chunk is still being retried: wait for it (or for expiry).
        if ((await this.store.chunks(upload.id)).some((c) => c.state === 'buffered')) continue;
        await this.complete(upload);
        count++;
      } catch (err) {
        this.deps.logger.warn({ err: coerceError(err), id: found.id }, 'could not complete idle upload');
      } finally {
        release();
      }
    }
    return count;
  }

  /**
   * Ends an unfinished upload for good (tus termination, expiry, clear_sessions): its bytes go,
   * staged or written in place (a partial file must not stay in the upload dir looking whole).
   */
  async end(upload: Upload, status: 'terminated' | 'expired', trx?: Knex.Transaction): Promise<void> {
    const now = this.now();
    await this.store.update(upload.id, { status, updatedAt: now }, trx);
    if (upload.status === 'active') await this.files.remove(upload.dataPath);
    await this.files.removeChunkBuffers(upload.id);
  }

  /**
   * Staged bytes no active upload owns (a crash between writing and recording, a refused
   * request an older version left behind) go after an hour: nothing else would ever remove them.
   */
  async sweepOrphans(olderThanMs = 3_600_000): Promise<number> {
    let count = 0;
    for (const { entry, id } of await this.files.staleStaging(olderThanMs, this.now())) {
      if (this.locks.isHeld(id)) continue;
      const upload = await this.store.get(id);
      if (upload?.status === 'active') continue;
      await this.files.removeStaging(entry);
      count++;
    }
    if (count > 0) this.deps.logger.warn({ count }, 'removed staged bytes no upload owns');
    return count;
  }

  /** Expires active uploads nobody touched within the expiry window. Returns how many. */
  async sweepExpired(): Promise<number> {
    let count = 0;
    for (const found of await this.store.expiredBefore(this.now())) {
      // Being written here or on another replica (a long PATCH does not touch the row): not expired.
      const release = await this.locks.tryAcquire(found.id).catch(() => undefined);
      if (!release) continue;
      try {
        const upload = await this.store.get(found.id);
        if (upload?.status !== 'active' || upload.expiresAt >= this.now()) continue;
        await this.end(upload, 'expired');
        count++;
      } catch (err) {
        this.deps.logger.warn({ err: coerceError(err), id: found.id }, 'could not expire upload');
      } finally {
        release();
      }
    }
    if (count > 0) this.deps.logger.info({ count }, 'expired unfinished uploads');
    return count;
  }
}
