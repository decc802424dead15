import { createHash } from 'node:crypto';
import type { Request } from 'express';
import { CALLER_KEY_ID_HEADER } from './auth';
import type { Knex, Migration } from './db';
import { badRequest, conflict, unprocessable } from './errors';
import type { Logger } from './logger';

/** How long a key is remembered: a client retries within minutes, not days. */
export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;

/** The Idempotency-Key a request carried, whose it is, and what the request asked for. */
export interface IdempotencyRequest {
  key: string;
  /** The gateway key's id when the gateway sent it, else "direct": keys are per caller. */
  caller: string;
  /** A hash of what was asked, so the same key for another request is refused, not answered wrongly. */
  fingerprint: string;
}

/**
 * The Idempotency-Key header of a request (draft-ietf-httpapi-idempotency-key-header: "a unique
 * key … to make non-idempotent HTTP methods such as POST … fault-tolerant"), or undefined without
 * one. `asked` is what the request asks for (its fields, not its transport), hashed as JSON.
 */
export function idempotencyOf(req: Request, asked: unknown): IdempotencyRequest | undefined {
  const headers = req.headersDistinct['idempotency-key'];
  if (headers === undefined) return undefined;
  if (headers.length !== 1) throw badRequest('send one Idempotency-Key header');
  const key = keyOf(headers[0]!.trim());
  const keyId = req.get(CALLER_KEY_ID_HEADER);
  // The gateway's key ids are short tokens; anything else is not one (and would not fit the column).
  if (keyId !== undefined && !/^[\w-]{1,64}$/.test(keyId))
    throw badRequest(`${CALLER_KEY_ID_HEADER}: not a key id`);
  const caller = keyId ? `key:${keyId}` : 'direct';
  const fingerprint = createHash('sha256').update(canonicalJson(asked)).digest('hex');
  return { key, caller, fingerprint };
}

/**
 * The draft's key is an sf-string (RFC 8941 §3.3.3: DQUOTE, printable ASCII with \" and \\
 * escaped, DQUOTE); a bare token of visible ASCII is common too and taken as it is.
 */
function keyOf(value: string): string {
  let key = value;
  if (value.startsWith('"')) {
    const m = /^"((?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\["\\])*)"$/.exec(value);
    if (!m) throw badRequest('Idempotency-Key: a quoted key must be one well-formed sf-string');
    key = m[1]!.replace(/\\(["\\])/g, '$1');
  }
  if (!/^[\x21-\x7e]{1,255}$/.test(key)) throw badRequest('Idempotency-Key: 1-255 visible ASCII characters');
  return key;
}

/** JSON with every object's members sorted, so a client that rebuilds its body still matches. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
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

  constructor(
    private readonly knex: Knex,
    options: IdempotencyKeysOptions = {},
  ) {
    this.table = options.table ?? 'idempotency_keys';
    this.column = options.resourceColumn ?? 'resource';
  }

  /**
   * The id of what an earlier request with this key created (an archive id, a job's), or
   * undefined. A key used for another kind of request, or for other fields, is refused with 422
   * as the draft says.
   */
  async first(idem: IdempotencyRequest, kind: string, now = Date.now()): Promise<string | undefined> {
    const row = (await this.knex(this.table)
      .where({ caller: idem.caller, key: idem.key })
      .where('created_at', '>=', now - IDEMPOTENCY_TTL_MS)
      .first()) as Record<string, string | number> | undefined;
    if (!row) return undefined;
    if (row.kind !== kind || row.fingerprint !== idem.fingerprint)
      throw unprocessable('this Idempotency-Key was used for a different request');
    return String(row[this.column]);
  }

  /** In the creating transaction: a second insert of a live key fails and takes its work with it. */
  async record(
    trx: Knex.Transaction,
    idem: IdempotencyRequest,
    kind: string,
    resource: string | number,
    now = Date.now(),
  ): Promise<void> {
    // An expired key may be used again (sweepExpired removes the rest, outside any request).
    await trx(this.table)
      .where({ caller: idem.caller, key: idem.key })
      .where('created_at', '<', now - IDEMPOTENCY_TTL_MS)
      .delete();
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

/**
 * Removes expired keys in batches of `batch` rows, each its own short statement, so a write lock
 * is never held long (SQLite has one for the whole database). Returns how many went.
 */
export async function sweepExpiredKeys(
  knex: Knex,
  options: { table?: string; batch?: number; now?: number } = {},
): Promise<number> {
  const table = options.table ?? 'idempotency_keys';
  const before = (options.now ?? Date.now()) - IDEMPOTENCY_TTL_MS;
  let removed = 0;
  for (;;) {
    const rows = (await knex(table)
      .select('caller', 'key')
      .where('created_at', '<', before)
      .limit(options.batch ?? 1000)) as { caller: string; key: string }[];
    if (rows.length === 0) return removed;
    removed += await knex(table)
      .whereIn(
        ['caller', 'key'],
        rows.map((r) => [r.caller, r.key]),
      )
      .where('created_at', '<', before)
      .delete();
  }
}

/**
 * Sweeps at once and then every `everyMs` (default an hour), outside any request; a failed
 * sweep is logged and the next one tries again. The returned function stops it.
 */
export function sweepExpiredKeysEvery(
  knex: Knex,
  logger: Logger,
  everyMs = 60 * 60 * 1000,
  table?: string,
): () => void {
  const run = () =>
    void sweepExpiredKeys(knex, { table }).catch((err: unknown) =>
      logger.warn({ err }, 'Idempotency-Key sweep failed'),
    );
  run();
  const timer = setInterval(run, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}

/** The created_at index for a table made before the migration above had it. */
export function idempotencyKeysIndexMigration(table = 'idempotency_keys'): Migration {
  return {
    async up(knex) {
      await knex.schema.alterTable(table, (t) => t.index(['created_at'], `${table}_created_at`));
    },
    async down(knex) {
      await knex.schema.alterTable(table, (t) => t.dropIndex(['created_at'], `${table}_created_at`));
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
        else t.string(column, 128).notNullable();
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
