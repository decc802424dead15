import { createHash, randomBytes } from 'node:crypto';
import { constantTimeEqual, type Knex, type Migration } from '@qlab/kit';
import type { Scope } from './config';

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

/** API keys, stored as SHA-256 hashes (keys are 32 random bytes, so no slow hash is needed), checked in constant time. */
export class KeyStore {
  /**
   * Verified keys by hash, for a few seconds: a database read per request would cost more than
   * the proxying. Revoking through this process clears it at once; another gateway process
   * sharing the file notices within `cacheMs`.
   */
  private readonly cache = new Map<string, { info: KeyInfo; until: number }>();

  constructor(
    private readonly knex: Knex,
    private readonly cacheMs = 5000,
  ) {}

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
    if (hit && hit.until > Date.now()) return hit.info;
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
    this.cache.set(hash, { info, until: Date.now() + this.cacheMs });
    return info;
  }

  async list(): Promise<KeyInfo[]> {
    return (await this.knex('api_keys').orderBy('created_at')).map(present);
  }

  async revoke(id: string): Promise<boolean> {
    this.cache.clear();
    return (
      (await this.knex('api_keys').where({ id }).whereNull('revoked_at').update({ revoked_at: Date.now() })) >
      0
    );
  }

  async count(): Promise<number> {
    const [{ n }] = (await this.knex('api_keys').whereNull('revoked_at').count({ n: '*' })) as [
      { n: number | string },
    ];
    return Number(n);
  }
}
