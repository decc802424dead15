import { createHash } from 'node:crypto';
import type { Request } from 'express';
import { CALLER_KEY_ID_HEADER } from './auth';
import type { Knex, Migration } from './db';
import { badRequest, conflict, unprocessable } from './errors';

/** How long a key is remembered: a client retries within minutes, not days. */
export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;
/** Keys recorded between two sweeps of every expired key. */
const SWEEP_EVERY = 500;

/** The Idempotency-Key a request carried, whose it is, and what the request asked for. */
export interface IdempotencyRequest {
  key: string;
  /** The gateway key's id when the gateway sent it, else "direct": keys are per caller. */
  caller: string;
  /** A hash of what was asked, so the same key for another request is refused, not answered wrongly. */
  fingerprint: string;
}

/** What the first request with a key created. */
export interface IdempotentResult {
  kind: string;
  /** The id of what it created (an archive id, a job id). */
  resource: string;
  fingerprint: string;
}

/**
 * The Idempotency-Key header of a request (draft-ietf-httpapi-idempotency-key-header: "a unique
 * key … to make non-idempotent HTTP methods such as POST … fault-tolerant"), or undefined without
 * one. `asked` is what the request asks for (its fields, not its transport), hashed as JSON.
 */
export function idempotencyOf(req: Request, asked: unknown): IdempotencyRequest | undefined {
  const header = req.get('idempotency-key');
  if (header === undefined) return undefined;
  // The draft's examples are quoted strings (an sf-string); bare tokens are common too.
  const key = header.trim().replace(/^"(.*)"$/, '$1');
  if (!/^[\x21-\x7e]{1,255}$/.test(key)) throw badRequest('Idempotency-Key: 1-255 visible ASCII characters');
  const keyId = req.get(CALLER_KEY_ID_HEADER);
  const caller = keyId ? `key:${keyId}` : 'direct';
  const fingerprint = createHash('sha256').update(JSON.stringify(asked)).digest('hex');
  return { key, caller, fingerprint };
}

export interface IdempotencyKeysOptions {
  table?: string;
  /** The column holding the created thing's id (calibration-store's predates the generic name). */
  resourceColumn?: string;
}

/**
 * Idempotency keys kept in the service's own database. The key is recorded in the same
 * transaction as what the request created, so a retried request whose first answer was lost
 * finds the first result instead of creating a second one, and a failed request leaves no key.
 */
export class IdempotencyKeys {
  private readonly table: string;
  private readonly column: string;
  /** Records since the last sweep of expired keys. */
  private sinceSweep = 0;

  constructor(
    private readonly knex: Knex,
    options: IdempotencyKeysOptions = {},
  ) {
    this.table = options.table ?? 'idempotency_keys';
    this.column = options.resourceColumn ?? 'resource';
  }

  /**
   * What an earlier request with this key created, or undefined. A key used for another kind of
   * request, or for other fields, is refused with 422 as the draft says.
   */
  async first(
    idem: IdempotencyRequest,
    kind: string,
    now = Date.now(),
  ): Promise<IdempotentResult | undefined> {
    const row = (await this.knex(this.table)
      .where({ caller: idem.caller, key: idem.key })
      .where('created_at', '>=', now - IDEMPOTENCY_TTL_MS)
      .first()) as Record<string, string | number> | undefined;
    if (!row) return undefined;
    if (row.kind !== kind || row.fingerprint !== idem.fingerprint)
      throw unprocessable('this Idempotency-Key was used for a different request');
    return { kind, resource: String(row[this.column]), fingerprint: idem.fingerprint };
  }

  /** In the creating transaction: a second insert of a live key fails and takes its work with it. */
  async record(
    trx: Knex.Transaction,
    idem: IdempotencyRequest,
    kind: string,
    resource: string | number,
    now = Date.now(),
  ): Promise<void> {
    // An expired key may be used again; every so often all expired keys go (created_at is indexed).
    const expired = trx(this.table).where('created_at', '<', now - IDEMPOTENCY_TTL_MS);
    if (++this.sinceSweep >= SWEEP_EVERY) {
      this.sinceSweep = 0;
      await expired.delete();
    } else await expired.where({ caller: idem.caller, key: idem.key }).delete();
    await trx(this.table).insert({
      caller: idem.caller,
      key: idem.key,
      kind,
      [this.column]: resource,
      fingerprint: idem.fingerprint,
      created_at: now,
    });
  }
}

/** The created_at index for a table made before the migration above had it. */
export function idempotencyKeysIndexMigration(table = 'idempotency_keys'): Migration {
  return {
    async up(knex) {
      await knex.schema.alterTable(table, (t) => t.index(['created_at'], `${table}_created_at`));
    },
  };
}

/** Thrown by a replay whose first result has been deleted since. */
export function idempotentResultGone(): Error {
  return conflict('what this Idempotency-Key created has been deleted since');
}

/**
 * The table IdempotencyKeys reads. `numeric` keeps calibration-store's bigint archive ids, and
 * `withoutIndex` its first migration as it shipped (its next one adds the index).
 */
export function idempotencyKeysMigration(
  options: IdempotencyKeysOptions & { numeric?: boolean; withoutIndex?: boolean } = {},
): Migration {
  const table = options.table ?? 'idempotency_keys';
  const column = options.resourceColumn ?? 'resource';
  return {
    async up(knex) {
      await knex.schema.createTable(table, (t) => {
        t.string('caller', 128).notNullable();
        t.string('key', 255).notNullable();
        t.string('kind', 16).notNullable();
        if (options.numeric) t.bigInteger(column).notNullable();
        else t.string(column, 64).notNullable();
        t.string('fingerprint', 64).notNullable();
        t.bigInteger('created_at').notNullable();
        t.primary(['caller', 'key']);
        if (!options.withoutIndex) t.index(['created_at'], `${table}_created_at`);
      });
    },
    async down(knex) {
      await knex.schema.dropTable(table);
    },
  };
}
