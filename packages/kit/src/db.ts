import { mkdirSync } from 'node:fs';
import path from 'node:path';
import knexFactory, { type Knex } from 'knex';
import type { Logger } from './logger';
import { privateFiles } from './private-files';

export type { Knex };

export interface Migration {
  up(knex: Knex): Promise<void>;
  down?(knex: Knex): Promise<void>;
}

export type DbTarget =
  | { client: 'sqlite'; filename: string }
  | { client: 'pg'; connectionString: string; searchPath?: string };

/**
 * Turns a database URL into a target. Accepts PostgreSQL URLs (`postgres://`, `postgresql://`,
 * SQLAlchemy's `postgresql+psycopg2://`), SQLite URLs in SQLAlchemy form (`sqlite:///relative.db`,
 * `sqlite:////absolute.db`) and plain file paths. Relative SQLite paths resolve against `baseDir`.
 */
export function parseDbUrl(url: string, baseDir = process.cwd()): DbTarget {
  const pg = /^postgres(?:ql)?(?:\+\w+)?:\/\//i.exec(url);
  if (pg) {
    const connectionString = url.replace(/^postgres(?:ql)?(?:\+\w+)?:\/\//i, 'postgres://');
    const parsed = new URL(connectionString);
    const searchPath = parsed.searchParams.get('schema') ?? undefined;
    parsed.searchParams.delete('schema');
    return { client: 'pg', connectionString: parsed.toString(), searchPath };
  }
  if (/^sqlite:/i.test(url)) {
    const rest = url.replace(/^sqlite:/i, '');
    if (rest === '' || rest === '//' || rest === '///:memory:' || rest === ':memory:') {
      return { client: 'sqlite', filename: ':memory:' };
    }
    // sqlite:///foo.db -> relative "foo.db"; sqlite:////abs/foo.db -> "/abs/foo.db"
    const file = rest.startsWith('///') ? rest.slice(3) : rest.replace(/^\/\//, '');
    return { client: 'sqlite', filename: path.resolve(baseDir, file) };
  }
  if (/^[a-z][\w+.-]*:\/\//i.test(url))
    throw new Error(`unsupported database URL scheme in ${JSON.stringify(url)}`);
  return { client: 'sqlite', filename: path.resolve(baseDir, url) };
}

export interface OpenDatabaseOptions {
  target: DbTarget;
  migrations: Record<string, Migration>;
  /** Where knex's own warnings go (it would print to the console otherwise). */
  logger?: Logger;
  /**
   * How long SQLite waits for another process's write lock before SQLITE_BUSY (ms). Default 5000.
   * SQLite's own wait sleeps at least 1 ms per try; a caller that retries busy transactions itself
   * (the job queue) sets 0 and retries faster.
   */
  sqliteBusyTimeoutMs?: number;
  /** Pool size for PostgreSQL (SQLite always uses one connection: better-sqlite3 is synchronous). */
  pgPoolMax?: number;
}

/** Opens SQLite (WAL, busy timeout, foreign keys) or PostgreSQL, and runs migrations before returning. */
export async function openDatabase(options: OpenDatabaseOptions): Promise<Knex> {
  const { target } = options;
  const log = {
    warn: (m: unknown) => options.logger?.warn({ knex: m }, 'knex warning'),
    error: (m: unknown) => options.logger?.error({ knex: m }, 'knex error'),
    deprecate: (m: unknown) => options.logger?.warn({ knex: m }, 'knex deprecation'),
    debug: (m: unknown) => options.logger?.debug({ knex: m }, 'knex debug'),
  };
  let knex: Knex;
  if (target.client === 'sqlite') {
    if (target.filename !== ':memory:') mkdirSync(path.dirname(target.filename), { recursive: true });
    knex = knexFactory({
      client: 'better-sqlite3',
      connection: { filename: target.filename },
      useNullAsDefault: true,
      log,
      pool: {
        min: 1,
        max: 1,
        afterCreate(
          conn: import('better-sqlite3').Database,
          done: (err: Error | null, conn: unknown) => void,
        ) {
          try {
            conn.pragma('journal_mode = WAL');
            // NORMAL in WAL mode survives a process crash; only an OS crash can lose the last commits.
            conn.pragma('synchronous = NORMAL');
            conn.pragma(`busy_timeout = ${Math.max(0, Math.floor(options.sqliteBusyTimeoutMs ?? 5000))}`);
            conn.pragma('foreign_keys = ON');
            done(null, conn);
          } catch (err) {
            done(err as Error, conn);
          }
        },
      },
    });
  } else {
    knex = knexFactory({
      client: 'pg',
      connection: { connectionString: target.connectionString },
      log,
      searchPath: target.searchPath ? [target.searchPath] : undefined,
      pool: { min: 0, max: options.pgPoolMax ?? 10 },
    });
    if (target.searchPath) await knex.raw('create schema if not exists ??', [target.searchPath]);
  }
  if (target.client === 'sqlite' && target.filename !== ':memory:') {
    const f = target.filename;
    privateFiles(f, `${f}-wal`, `${f}-shm`);
  }
  try {
    await knex.migrate.latest({ migrationSource: inlineMigrations(options.migrations) });
  } catch (err) {
    await knex.destroy();
    throw new Error(`database migration failed: ${(err as Error).message}`, { cause: err });
  }
  return knex;
}

/** Migrations live in code (no file globbing, so built and source trees behave the same). */
function inlineMigrations(migrations: Record<string, Migration>): Knex.MigrationSource<string> {
  return {
    getMigrations: async () => Object.keys(migrations).sort(),
    getMigrationName: (name) => name,
    getMigration: async (name) => {
      const m = migrations[name];
      if (!m) throw new Error(`unknown migration ${name}`);
      return { up: m.up, down: m.down ?? (async () => undefined) };
    },
  };
}

export function isPostgres(knex: Knex): boolean {
  return knex.client.config.client === 'pg';
}
