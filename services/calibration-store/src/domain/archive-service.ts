import { rm } from 'node:fs/promises';
import type { Outbox } from '@qlab/events';
import { conflict, type Knex, type Logger } from '@qlab/kit';
import type { CalibrationEvents } from '../events';
import type { BlobStore } from '../storage/blob-store';
import type { MetadataStore } from '../storage/metadata-store';
import type { ArchiveKind, ArchiveRecord, NewArchive } from './archives';

export interface ArchiveServiceDeps {
  store: MetadataStore;
  blobs: BlobStore;
  /** Absent when events are off (no MQTT_URL). */
  outbox?: Outbox<CalibrationEvents>;
  logger: Logger;
}

/** Event payload: what a subscriber needs to fetch the archive. */
function eventData(r: ArchiveRecord) {
  return {
    id: r.id,
    hashID: r.hashID,
    ...(r.kind === 'result' ? { name: r.name, run_id: r.runId } : {}),
    notes: r.notes,
    filename: r.filename,
    size: r.size,
    sha256: r.sha256,
    created_at: new Date(r.createdAt).toISOString(),
  };
}

/** Saving and deleting archives: the two operations that touch both bytes and rows. */
export class ArchiveService {
  constructor(private readonly deps: ArchiveServiceDeps) {}

  private async emit(
    trx: Knex.Transaction,
    type: `${ArchiveRecord['kind']}.${'uploaded' | 'deleted'}`,
    r: ArchiveRecord,
  ): Promise<void> {
    await this.deps.outbox?.record(trx, type, `${r.kind}s/${r.id}`, eventData(r));
  }

  /**
   * Moves the uploaded temp file into the content store and inserts the row (and its event)
   * in one transaction. If the row cannot be written, content no row refers to is removed.
   */
  async save(
    archive: NewArchive,
    tempPath: string,
    /** Also in the row's transaction (the Idempotency-Key record); if it throws, nothing is saved. */
    also?: (trx: Knex.Transaction, saved: ArchiveRecord) => Promise<unknown>,
  ): Promise<ArchiveRecord> {
    const { blobs, store } = this.deps;
    try {
      const saved = await blobs.withLock(archive.sha256, async () => {
        await blobs.commit(tempPath, archive.sha256);
        try {
          return await store.insert(archive, async (trx, r) => {
            await also?.(trx, r);
            await this.emit(trx, `${archive.kind}.uploaded`, r);
          });
        } catch (err) {
          if ((await store.references(archive.sha256).catch(() => 1)) === 0)
            await blobs.remove(archive.sha256);
          throw err;
        }
      });
      this.deps.outbox?.written();
      return saved;
    } finally {
      await rm(tempPath, { force: true });
    }
  }

  async remove(kind: ArchiveKind, id: number): Promise<ArchiveRecord | undefined> {
    const { blobs, store } = this.deps;
    const existing = await store.get(kind, id);
    if (!existing) return undefined;
    const removed = await blobs.withLock(existing.sha256, async () => {
      const r = await store.remove(kind, id, (trx, row) => this.emit(trx, `${kind}.deleted`, row));
      if (r && (await store.references(r.sha256)) === 0) await blobs.remove(r.sha256);
      return r;
    });
    if (!removed) throw conflict(`${kind} ${id} was deleted concurrently`);
    this.deps.outbox?.written();
    return removed;
  }
}
