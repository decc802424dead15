import { createHash, randomBytes } from 'node:crypto';
import {
  constantTimeEqual,
  isPostgres,
  type Knex,
  type Logger,
  listenPg,
  type Migration,
  type PgListener,
  pgConnectionString,
} from '@qlab/kit';
import type { Scope } from './config';

/** Key lookups are tiny: a database that stalls is a 503 in this long, not a request held for ever. */
export const KEY_STORE_TIMEOUT_MS = 3000;

export const keyMigrations: Record<string, Migration> = {
  '001_api_keys': {
    up: (knex) =>
      knex.schema.createTable('api_keys', (t) => {
        t.string('id', 32).primary();
        t.string('prefix', 16).notNullable().index();
        t.string('hash', 64).notNullable();
        t.string('name', 200).notNullable();
        t.string('scopes', 64).notNullable();
        t.bigInteger('created_at').notNullable();
        t.bigInteger('revoked_at');
        t.bigInteger('last_used_at');
      }),
    down: (knex) => knex.schema.dropTable('api_keys'),
  },
};

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
/** The first characters identify a key for lookup and display; only its hash is stored. */
const prefixOf = (key: string) => key.slice(0, 12);

export interface KeyInfo {
  id: string;
  prefix: string;
  name: string;
  scopes: Scope[];
  created_at: string;
  revoked_at: string | null;
  last_used_at: string | null;
}

function present(r: Record<string, unknown>): KeyInfo {
  const iso = (v: unknown) => (v == null ? null : new Date(Number(v)).toISOString());
  return {
    id: String(r.id),
    prefix: String(r.prefix),
    name: String(r.name),
    scopes: String(r.scopes).split(',') as Scope[],
    created_at: iso(r.created_at)!,
    revoked_at: iso(r.revoked_at),
    last_used_at: iso(r.last_used_at),
  };
}

/** Where every replica hears of a revocation (PostgreSQL NOTIFY; the payload is the key's id). */
export const REVOCATION_CHANNEL = 'qlab_gateway_key_revoked';
/** The longest a revocation on another replica may go unnoticed while it listens (issue 18: 1 s). */
export const REVOCATION_BOUND_MS = 1000;

/** API keys, stored as SHA-256 hashes (keys are 32 random bytes, so no slow hash is needed), checked in constant time. */
export class KeyStore {
  /**
   * Verified keys by hash, for a few seconds: a database read per request would cost more than
   * the proxying. Revoking through this process clears it at once. On PostgreSQL every replica
   * LISTENs for revocations and clears it too, and uses it only while that connection has
   * proved alive within REVOCATION_BOUND_MS (otherwise every request reads the database); on
   * SQLite there is one gateway per file.
   */
  private readonly cache = new Map<string, { info: KeyInfo; until: number }>();
  private listener?: PgListener;
  private readonly revokedListeners: ((id: string) => void)[] = [];
  private readonly gapListeners: (() => void)[] = [];

  constructor(
    private readonly knex: Knex,
    private readonly cacheMs = 5000,
  ) {}

  /** On PostgreSQL: hear revocations made by other replicas (a no-op on SQLite). */
  listenForRevocations(logger: Logger): void {
    if (!isPostgres(this.knex) || this.listener) return;
    this.listener = listenPg({
      connectionString: pgConnectionString(this.knex),
      channel: REVOCATION_CHANNEL,
      applicationName: 'qlab-gateway-revocations',
      onNotify: (id) => {
        this.forget();
        for (const l of this.revokedListeners) l(id);
      },
      onGap: (listening) => {
        this.forget();
        // Revocations may have been missed: whoever holds connections of keys re-checks them.
        if (listening) for (const l of this.gapListeners) l();
      },
      logger,
    });
  }

  async close(): Promise<void> {
    await this.listener?.close();
  }

  /**
   * `onRevoked(id)` for every key revoked here or, on PostgreSQL, on another replica; `onGap()`
   * when revocations from other replicas may have been missed (then check with `active`).
   */
  watch(onRevoked: (id: string) => void, onGap: () => void): void {
    this.revokedListeners.push(onRevoked);
    this.gapListeners.push(onGap);
  }

  /** Which of these key ids are not revoked. */
  async active(ids: string[]): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    const rows = (await this.knex('api_keys').select('id').whereIn('id', ids).whereNull('revoked_at')) as {
      id: string;
    }[];
    return new Set(rows.map((r) => r.id));
  }

  /**
   * Drops every cached key. The generation makes a read that began before a revocation and
   * ends after it unable to cache what it read.
   */
  private forget(): void {
    this.generation++;
    this.cache.clear();
  }
  private generation = 0;

  private cacheUsable(): boolean {
    return !this.listener || this.listener.freshWithin(REVOCATION_BOUND_MS);
  }

  async create(
    name: string,
    scopes: Scope[],
    key = `qlab_${randomBytes(32).toString('base64url')}`,
  ): Promise<{ key: string; info: KeyInfo }> {
    const row = {
      id: randomBytes(8).toString('hex'),
      prefix: prefixOf(key),
      hash: sha256(key),
      name,
      scopes: scopes.join(','),
      created_at: Date.now(),
    };
    await this.knex('api_keys').insert(row);
    return { key, info: present(row) };
  }

  /** Adds a bootstrap key unless one with the same hash exists. */
  async ensure(key: string, scopes: Scope[], name: string): Promise<void> {
    const hash = sha256(key);
    const existing = await this.knex('api_keys').where({ hash }).first();
    if (!existing) await this.create(name, scopes, key);
  }

  async verify(key: string): Promise<KeyInfo | undefined> {
    const hash = sha256(key);
    const hit = this.cache.get(hash);
    if (hit && hit.until > Date.now() && this.cacheUsable()) return hit.info;
    const generation = this.generation;
    const rows = await this.knex('api_keys')
      .where({ prefix: prefixOf(key) })
      .whereNull('revoked_at');
    const match = rows.find((r) => constantTimeEqual(String(r.hash), hash));
    if (!match) return undefined;
    // Last use is informational: write it at most once a minute per key.
    if (!match.last_used_at || Date.now() - Number(match.last_used_at) > 60_000) {
      await this.knex('api_keys').where({ id: match.id }).update({ last_used_at: Date.now() });
    }
    const info = present(match);
    if (this.cache.size > 10_000) this.cache.clear();
    if (generation === this.generation) this.cache.set(hash, { info, until: Date.now() + this.cacheMs });
    return info;
  }

  async list(): Promise<KeyInfo[]> {
    return (await this.knex('api_keys').orderBy('created_at')).map(present);
  }

  async revoke(id: string): Promise<boolean> {
    this.forget();
    const revoked = await this.knex.transaction(async (trx) => {
      const n = await trx('api_keys')
        .where({ id })
        .whereNull('revoked_at')
        .update({ revoked_at: Date.now() });
      // Delivered to every listening replica when this transaction commits, not before.
      if (n > 0 && isPostgres(this.knex)) await trx.raw('select pg_notify(?, ?)', [REVOCATION_CHANNEL, id]);
      return n > 0;
    });
    this.forget();
    if (revoked) for (const l of this.revokedListeners) l(id);
    return revoked;
  }

  async count(): Promise<number> {
    const [{ n }] = (await this.knex('api_keys').whereNull('revoked_at').count({ n: '*' })) as [
      { n: number | string },
    ];
    return Number(n);
  }
}
