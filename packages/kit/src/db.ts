import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import knexFactory, { type Knex } from 'knex';
import { prepareMigrationTables } from './knex-migration-tables';
import type { Logger } from './logger';
import { privateFiles } from './private-files';
import { cacheStatements } from './sqlite-statements';

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
  /**
   * PostgreSQL: a query, a connect, or a wait for a pooled connection that takes longer fails
   * (ms). For services whose every query is small (the gateway's key lookups): a stalled
   * database then answers 503 in seconds instead of holding every request. Default: none.
   */
  pgTimeoutMs?: number;
  /**
   * Tables of ours that another system also names (the seeds' own `jobs`). A database holding one
   * of them without knex's migration table belongs to that system: it is refused before anything
   * is written to it or its file's mode or journal is changed. `hint` ends the error.
   */
  foreignTables?: { names: string[]; hint: string };
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
    if (options.foreignTables && target.filename !== ':memory:' && existsSync(target.filename))
      refuseForeign(sqliteTables(target.filename), target.filename, options.foreignTables);
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
            cacheStatements(conn);
            done(null, conn);
          } catch (err) {
            done(err as Error, conn);
          }
        },
      },
    });
  } else {
    const t = options.pgTimeoutMs;
    knex = knexFactory({
      client: 'pg',
      connection: {
        connectionString: target.connectionString,
        // The server ends the statement at t (so the connection is free again); the client
        // gives up a second later when no answer comes at all (a stalled link).
        ...(t ? { statement_timeout: t, query_timeout: t + 1000, connectionTimeoutMillis: t } : {}),
      },
      log,
      searchPath: target.searchPath ? [target.searchPath] : undefined,
      pool: { min: 0, max: options.pgPoolMax ?? 10 },
      ...(t ? { acquireConnectionTimeout: t } : {}),
    });
  }
  if (target.client === 'sqlite' && target.filename !== ':memory:') {
    const f = target.filename;
    privateFiles(f, `${f}-wal`, `${f}-shm`);
  }
  try {
    if (options.foreignTables && target.client === 'pg') {
      const rows = (await knex.raw(
        'select table_name from information_schema.tables where table_schema = coalesce(?, current_schema())',
        [target.searchPath ?? null],
      )) as { rows: { table_name: string }[] };
      refuseForeign(
        rows.rows.map((r) => r.table_name),
        target.searchPath ? `schema ${target.searchPath}` : 'the database',
        options.foreignTables,
      );
    }
    await migrateTogether(knex, options, target);
  } catch (err) {
    await knex.destroy();
    throw new Error(`database migration failed: ${(err as Error).message}`, { cause: err });
  }
  return knex;
}

/** How long a start waits for other processes migrating the same database (a migration run takes seconds). */
const MIGRATION_WAIT_MS = 20_000;

/**
 * Runs the migrations, waiting for other processes that start on the same database at the same
 * moment (replicas, two workers). knex's own tables are made first, one process at a time
 * (`prepareMigrationTables`; knex's own way races). knex takes its lock row inside the migration
 * transaction and refuses at once when another holds it; SQLite answers SQLITE_BUSY at once when a transaction's
 * snapshot went stale; PostgreSQL can report a duplicate catalog row when two sessions create the
 * same schema or table together. Each of those means "someone else is migrating": wait and try
 * again (the winner's work is then found done). Any other error is real and fails the start.
 */
async function migrateTogether(knex: Knex, options: OpenDatabaseOptions, target: DbTarget): Promise<void> {
  const source = inlineMigrations(options.migrations);
  const sqlite = target.client === 'sqlite';
  // A service that retries its own busy transactions runs with no SQLite wait; migrations need one.
  const busyMs = Math.max(0, Math.floor(options.sqliteBusyTimeoutMs ?? 5000));
  if (sqlite && busyMs < 5000) await knex.raw('pragma busy_timeout = 5000');
  const deadline = Date.now() + MIGRATION_WAIT_MS;
  try {
    for (let attempt = 1; ; attempt++) {
      try {
        if (!sqlite && target.searchPath)
          await knex.raw('create schema if not exists ??', [target.searchPath]);
        await prepareMigrationTables(knex, !sqlite);
        await knex.migrate.latest({ migrationSource: source });
        return;
      } catch (err) {
        if (!isMigrationRace(err) || Date.now() > deadline) throw err;
        options.logger?.warn(
          { attempt, reason: (err as Error).message },
          'another process is migrating: waiting',
        );
        await new Promise((r) => setTimeout(r, Math.min(25 * 2 ** attempt, 1000) * (0.5 + Math.random())));
      }
    }
  } finally {
    if (sqlite && busyMs < 5000) await knex.raw(`pragma busy_timeout = ${busyMs}`);
  }
}

/**
 * Only errors that say "another process got there first", never a migration's own failure:
 * knex's lock row held (knex wraps any error while taking it in MigrationLocked, so only its
 * own "already locked" message counts); SQLITE_BUSY; and the duplicate catalog rows, tables or
 * objects of knex's own tables or our `create schema`, which two sessions can create together.
 * A migration's own unique or duplicate error fails the start at once.
 */
function isMigrationRace(err: unknown): boolean {
  const e = err as { name?: string; code?: string; message?: string; detail?: string };
  const message = `${e.message ?? ''} ${e.detail ?? ''}`;
  if (e.name === 'MigrationLocked') return /already locked/.test(message);
  if (typeof e.code === 'string' && e.code.startsWith('SQLITE_BUSY')) return true;
  const ours = /knex_migrations|pg_namespace|create schema/i.test(message);
  if (e.code === 'SQLITE_ERROR') return ours && /already exists/.test(message);
  if (['23505', '42P07', '42710'].includes(e.code ?? '')) return ours;
  // Deadlock and serialization failures: nothing was done, doing it again is safe.
  return e.code === '40P01' || e.code === '40001';
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

/** The PostgreSQL URL a knex opened by openDatabase uses (for a connection of one's own: LISTEN, locks). */
export function pgConnectionString(knex: Knex): string {
  if (!isPostgres(knex)) throw new Error('not a PostgreSQL database');
  return (knex.client.config.connection as { connectionString: string }).connectionString;
}

/**
 * The deployment a database is (`<database>.<schema>`, `sqlite.<schema>` on SQLite): replicas on
 * one database and schema are replicas of one service and share its locks and channels; another
 * database or schema is another deployment.
 */
export function deploymentScope(knex: Knex): string {
  const sp = knex.client.config.searchPath as string | string[] | undefined;
  const schema = (Array.isArray(sp) ? sp[0] : sp) ?? 'public';
  const database = isPostgres(knex)
    ? new URL(pgConnectionString(knex)).pathname.slice(1) || 'postgres'
    : 'sqlite';
  return `${database}.${schema}`;
}

/** The table names of a SQLite file, read without changing it (read-only, no journal change). */
function sqliteTables(filename: string): string[] {
  const db = new BetterSqlite3(filename, { readonly: true, fileMustExist: true });
  try {
    return (
      db.prepare("select name from sqlite_master where type = 'table'").all() as { name: string }[]
    ).map((r) => r.name);
  } finally {
    db.close();
  }
}

function refuseForeign(tables: string[], where: string, foreign: { names: string[]; hint: string }): void {
  if (tables.includes('knex_migrations')) return;
  const theirs = foreign.names.filter((n) => tables.includes(n));
  if (theirs.length === 0) return;
  throw new Error(
    `${where} already holds another system's ${theirs.map((t) => `"${t}"`).join(', ')} table (no qlab migrations in it): refusing to write into it. ${foreign.hint}`,
  );
}
