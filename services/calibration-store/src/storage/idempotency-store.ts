import type { Knex } from '@qlab/kit';
import type { ArchiveKind } from '../domain/archives';

const TABLE = 'idempotency_keys';
/** How long a key is remembered: a client retries within minutes, not days. */
export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;

export interface IdempotentUpload {
  kind: ArchiveKind;
  archiveId: number;
  /** What the first request asked for; a repeat that asks for something else is refused. */
  fingerprint: string;
}

/**
 * Idempotency-Key (IETF draft-ietf-httpapi-idempotency-key-header) for uploads: the key a caller
 * sent with an upload, stored in the upload's own transaction, so a retried upload whose first
 * answer was lost finds its archive instead of storing a second one. Keys are per caller.
 */
export class IdempotencyStore {
  constructor(private readonly knex: Knex) {}

  async find(caller: string, key: string, now = Date.now()): Promise<IdempotentUpload | undefined> {
    const row = (await this.knex(TABLE)
      .where({ caller, key })
      .where('created_at', '>=', now - IDEMPOTENCY_TTL_MS)
      .first()) as { kind: ArchiveKind; archive_id: number | string; fingerprint: string } | undefined;
    return row
      ? { kind: row.kind, archiveId: Number(row.archive_id), fingerprint: row.fingerprint }
      : undefined;
  }

  /** In the upload's transaction: a second insert of the same key fails, and takes its upload with it. */
  async record(
    trx: Knex.Transaction,
    caller: string,
    key: string,
    upload: IdempotentUpload,
    now = Date.now(),
  ) {
    await trx(TABLE)
      .where({ caller, key })
      .where('created_at', '<', now - IDEMPOTENCY_TTL_MS)
      .delete();
    await trx(TABLE).insert({
      caller,
      key,
      kind: upload.kind,
      archive_id: upload.archiveId,
      fingerprint: upload.fingerprint,
      created_at: now,
    });
  }
}

export const idempotencyMigration = {
  async up(knex: Knex) {
    await knex.schema.createTable(TABLE, (t) => {
      t.string('caller', 128).notNullable();
      t.string('key', 255).notNullable();
      t.string('kind', 16).notNullable();
      t.bigInteger('archive_id').notNullable();
      t.string('fingerprint', 64).notNullable();
      t.bigInteger('created_at').notNullable();
      t.primary(['caller', 'key']);
    });
  },
  async down(knex: Knex) {
    await knex.schema.dropTable(TABLE);
  },
};
