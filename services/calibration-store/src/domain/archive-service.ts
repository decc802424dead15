import { rm } from 'node:fs/promises';
import type { Outbox } from '@qlab/events';
import { conflict, type Knex, type Logger } from '@qlab/kit';
import type { CalibrationEvents } from '../events';
import type { ArchiveBlobs } from '../storage/archive-blobs';
import type { MetadataStore } from '../storage/metadata-store';
import type { ArchiveKind, ArchiveRecord, NewArchive } from './archives';

export interface ArchiveServiceDeps {
  store: MetadataStore;
  blobs: ArchiveBlobs;
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
   * Takes the uploaded temp file into the blob store (unless the same content is there) and
   * inserts the row and its event, all under the content's lock. If the row cannot be written,
   * content no row refers to is removed, under the lock again.
   */
  async save(
    archive: NewArchive,
    tempPath: string,
    /** Also in the row's transaction (the Idempotency-Key record); if it throws, nothing is saved. */
    also?: (trx: Knex.Transaction, saved: ArchiveRecord) => Promise<unknown>,
  ): Promise<ArchiveRecord> {
    const { blobs, store } = this.deps;
    const { sha256 } = archive;
    try {
      const saved = await store
        .withContent(sha256, async (trx) => {
          if (!(await blobs.exists(sha256))) await blobs.moveIn(tempPath, sha256);
          const r = await store.insert(trx, archive);
          await also?.(trx, r);
          await this.emit(trx, `${archive.kind}.uploaded`, r);
          return r;
        })
        .catch(async (err) => {
          await store
            .withContent(sha256, async (trx) => {
              if ((await store.references(sha256, trx)) === 0) await blobs.remove(sha256);
            })
            .catch((cleanupErr) =>
              this.deps.logger.warn({ err: cleanupErr, sha256 }, 'could not remove unreferenced content'),
            );
          throw err;
        });
      this.deps.outbox?.written();
      return saved;
    } finally {
      await rm(tempPath, { force: true });
    }
  }

  /**
   * Deletes the row and its event and, when it was the last row pointing at the content, the
   * content, under the content's lock. The bytes go before the commit: if the commit then
   * failed, a row without content would answer 500 ARCHIVE_MISSING; the other order could
   * delete bytes a concurrent save on another replica had just counted on.
   */
  async remove(kind: ArchiveKind, id: number): Promise<ArchiveRecord | undefined> {
    const { blobs, store } = this.deps;
    const existing = await store.get(kind, id);
    if (!existing) return undefined;
    const removed = await store.withContent(existing.sha256, async (trx) => {
      const r = await store.remove(trx, kind, id);
      if (!r) return undefined;
      await this.emit(trx, `${kind}.deleted`, r);
      if ((await store.references(r.sha256, trx)) === 0) await blobs.remove(r.sha256);
      return r;
    });
    if (!removed) throw conflict(`${kind} ${id} was deleted concurrently`);
    this.deps.outbox?.written();
    return removed;
  }
}
