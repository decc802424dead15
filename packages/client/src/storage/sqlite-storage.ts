import { mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { type ClientLog, createClientLog } from '../uploads/client-log';

/** A stored value: a JSON object, as the seed's storage keeps dictionaries. */
export type StoredData = { [key: string]: unknown };

/**
 * The seed's storage interface (IndexedCP Python port, BaseStorage): a persistent key-value store
 * of JSON objects. `await using storage = createStorage()` closes it at the end of the block.
 */
export interface Storage extends AsyncDisposable {
  initialize(): Promise<void>;
  save(key: string, data: StoredData): Promise<void>;
  load(key: string): Promise<StoredData | null>;
  loadAll(): Promise<StoredData[]>;
  delete(key: string): Promise<boolean>;
  exists(key: string): Promise<boolean>;
  list(): Promise<string[]>;
  count(): Promise<number>;
  /** Removes entries last saved more than maxAgeSeconds ago; returns how many went. */
  cleanupOld(maxAgeSeconds: number): Promise<number>;
  close(): Promise<void>;
}

export interface SQLiteStorageOptions {
  /** Default ~/.indexcp/db/storage.db. */
  dbPath?: string;
  /** Default "storage". Letters, digits and _ only (it becomes a table name). */
  tableName?: string;
  /** See IndexedCPClient's logLevel. */
  logLevel?: string;
  /** Injected time source (tests). */
  now?: () => number;
}

const TABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;
const MAX_KEY_LENGTH = 1024;

function checkKey(key: unknown): string {
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_LENGTH)
    throw new TypeError(`a storage key is a string of 1-${MAX_KEY_LENGTH} characters`);
  return key;
}

/** SQLite (WAL) storage, one row per key, values as JSON; safe to share between processes. */
export class SQLiteStorage implements Storage {
  private db: Database.Database | undefined;
  private readonly dbPath: string;
  private readonly table: string;
  private readonly log: ClientLog;
  private readonly now: () => number;

  constructor(options: SQLiteStorageOptions = {}) {
    this.dbPath = options.dbPath ?? path.join(homedir(), '.indexcp', 'db', 'storage.db');
    this.table = options.tableName ?? 'storage';
    if (!TABLE_NAME.test(this.table))
      throw new TypeError(
        `table name "${this.table}" must be letters, digits and _ (not starting with a digit)`,
      );
    this.log = createClientLog('[SQLiteStorage]', options.logLevel);
    this.now = options.now ?? Date.now;
  }

  async initialize(): Promise<void> {
    this.open();
  }

  /** Opens on first use, so forgetting initialize() is not an error. */
  private open(): Database.Database {
    if (this.db) return this.db;
    if (this.dbPath !== ':memory:') mkdirSync(path.dirname(path.resolve(this.dbPath)), { recursive: true });
    const db = new Database(this.dbPath);
    db.pragma('journal_mode = WAL');
    db.pragma('busy_timeout = 5000');
    db.exec(
      `create table if not exists "${this.table}" (key text primary key, data text not null, created_at integer not null, updated_at integer not null)`,
    );
    this.db = db;
    this.log.debug(`opened ${this.dbPath} (table ${this.table})`);
    return db;
  }

  async save(key: string, data: StoredData): Promise<void> {
    checkKey(key);
    if (data === null || typeof data !== 'object' || Array.isArray(data))
      throw new TypeError('storage values are JSON objects');
    const json = JSON.stringify(data);
    const now = this.now();
    this.open()
      .prepare(
        `insert into "${this.table}" (key, data, created_at, updated_at) values (?, ?, ?, ?)
         on conflict(key) do update set data = excluded.data, updated_at = excluded.updated_at`,
      )
      .run(key, json, now, now);
  }

  async load(key: string): Promise<StoredData | null> {
    const row = this.open().prepare(`select data from "${this.table}" where key = ?`).get(checkKey(key)) as
      | { data: string }
      | undefined;
    return row ? (JSON.parse(row.data) as StoredData) : null;
  }

  async loadAll(): Promise<StoredData[]> {
    const rows = this.open().prepare(`select data from "${this.table}" order by key`).all() as {
      data: string;
    }[];
    return rows.map((r) => JSON.parse(r.data) as StoredData);
  }

  async delete(key: string): Promise<boolean> {
    return this.open().prepare(`delete from "${this.table}" where key = ?`).run(checkKey(key)).changes > 0;
  }

  async exists(key: string): Promise<boolean> {
    return (
      this.open().prepare(`select 1 from "${this.table}" where key = ?`).get(checkKey(key)) !== undefined
    );
  }

  async list(): Promise<string[]> {
    const rows = this.open().prepare(`select key from "${this.table}" order by key`).all() as {
      key: string;
    }[];
    return rows.map((r) => r.key);
  }

  async count(): Promise<number> {
    return (this.open().prepare(`select count(*) as n from "${this.table}"`).get() as { n: number }).n;
  }

  async cleanupOld(maxAgeSeconds: number): Promise<number> {
    if (!Number.isFinite(maxAgeSeconds) || maxAgeSeconds < 0)
      throw new TypeError('maxAgeSeconds is a number of seconds, 0 or more');
    const before = this.now() - maxAgeSeconds * 1000;
    const removed = this.open()
      .prepare(`delete from "${this.table}" where updated_at < ?`)
      .run(before).changes;
    if (removed > 0) this.log.info(`removed ${removed} entries older than ${maxAgeSeconds}s`);
    return removed;
  }

  async close(): Promise<void> {
    this.db?.close();
    this.db = undefined;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** The seed's factory: `createStorage('sqlite', { dbPath, tableName, logLevel })`. */
export function createStorage(type: 'sqlite' = 'sqlite', options: SQLiteStorageOptions = {}): Storage {
  if (type !== 'sqlite') throw new TypeError(`storage type "${String(type)}" is not known (sqlite is)`);
  return new SQLiteStorage(options);
}
