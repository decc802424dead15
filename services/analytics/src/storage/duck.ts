import {
  DOUBLE,
  type DuckDBConnection,
  DuckDBInstance,
  type DuckDBPreparedStatement,
  type DuckDBType,
  type DuckDBValue,
} from '@duckdb/node-api';
import { AppError } from '@qlab/kit';

export type Params = DuckDBValue[];

/**
 * Parameters written as `$n::TYPE`, each bound with a type where the driver would guess wrong:
 * it binds a whole JavaScript number as INTEGER or BIGINT, so a DOUBLE of 1e19 (every double
 * from 2^53 up is whole) failed to bind at all. DOUBLE ones are bound as DOUBLE.
 */
export class Bound {
  readonly values: Params = [];
  readonly types: (DuckDBType | undefined)[] = [];

  /** The placeholder for `value`, cast to `cast` in SQL. */
  add(value: DuckDBValue | undefined, cast: string): string {
    const v = value === undefined ? null : value;
    this.values.push(v);
    this.types.push(v !== null && cast === 'DOUBLE' ? DOUBLE : undefined);
    return `$${this.values.length}::${cast}`;
  }
}
// biome-ignore lint/suspicious/noExplicitAny: rows are typed by each query.
export type Row = Record<string, any>;

export interface DuckOptions {
  /** DuckDB worker threads. Default 2. */
  threads?: number;
  /** DuckDB's memory_limit (`4GB`); unset, DuckDB's default of 80 % of RAM. */
  memoryLimit?: string;
  /** Queries longer than this are interrupted and answered with 503. */
  queryTimeoutMs: number;
  /** Read connections; reads run concurrently with each other and with the writer. Default 4. */
  readers?: number;
}

/** Serializes async work: DuckDB allows one writer per file, and a connection runs one transaction. */
class Mutex {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(fn, fn);
    this.tail = next.catch(() => undefined);
    return next;
  }
}

export const queryTimeout = (ms: number) =>
  new AppError(
    503,
    'QUERY_TIMEOUT',
    `the query took longer than ${ms} ms and was stopped; narrow the filters`,
  );

/**
 * One DuckDB file owned by this process: a writer connection whose transactions run one at a
 * time, and a few reader connections that see committed data. Every call has a deadline;
 * a query past it is interrupted inside DuckDB, not only abandoned.
 */
export class DuckDb {
  private readonly writer: { conn: DuckDBConnection; lock: Mutex };
  private readonly readers: { conn: DuckDBConnection; lock: Mutex; queued: number }[];
  private readonly prepared: PreparedStatements;
  /** Bumped by every committed write; cached reads from an older version are not reused. */
  private version = 0;
  private readonly cache = new Map<string, { version: number; rows: Promise<unknown[]> }>();

  private constructor(
    private readonly instance: DuckDBInstance,
    writer: DuckDBConnection,
    readers: DuckDBConnection[],
    readonly options: DuckOptions,
  ) {
    this.writer = { conn: writer, lock: new Mutex() };
    this.readers = readers.map((conn) => ({ conn, lock: new Mutex(), queued: 0 }));
    this.prepared = new PreparedStatements(writer);
  }

  static async open(path: string, options: DuckOptions): Promise<DuckDb> {
    // No extension is fetched or loaded behind our back: a SQLite file given as the database
    // would otherwise make DuckDB download its sqlite scanner and attach it.
    const instance = await DuckDBInstance.create(path, {
      threads: String(options.threads ?? 2),
      ...(options.memoryLimit ? { memory_limit: options.memoryLimit } : {}),
      autoinstall_known_extensions: 'false',
      autoload_known_extensions: 'false',
      // DuckDB's default, said here because bulk loads number a file's lines by the order its
      // rows land in a table (loader.ts); off, a 1M-line file came out 95 % reordered.
      preserve_insertion_order: 'true',
    }).catch((err: Error) => {
      throw new Error(`cannot open ${path} as a DuckDB database: ${err.message}`, { cause: err });
    });
    const writer = await instance.connect();
    const readers: DuckDBConnection[] = [];
    for (let i = 0; i < (options.readers ?? 4); i++) readers.push(await instance.connect());
    return new DuckDb(instance, writer, readers, options);
  }

  /**
   * Runs `fn` on the reader with the fewest calls queued, so one long read (an export, a
   * warm-up) does not hold up the short ones behind it.
   */
  private onReader<T>(fn: (conn: DuckDBConnection) => Promise<T>): Promise<T> {
    const reader = this.readers.reduce((a, b) => (b.queued < a.queued ? b : a));
    reader.queued++;
    return reader.lock
      .run(() => this.ifOpen(() => fn(reader.conn)))
      .finally(() => {
        reader.queued--;
      });
  }

  /** A read on one of the reader connections. */
  query<T = Row>(sql: string, params: Params = [], timeoutMs = this.options.queryTimeoutMs): Promise<T[]> {
    return this.onReader((conn) => withDeadline(conn, timeoutMs, () => readRows<T>(conn, sql, params)));
  }

  /**
   * Reads on one reader connection inside one transaction: every statement in `fn` sees the same
   * committed snapshot, whatever commits meanwhile (the lake export's tables agree with each other).
   */
  snapshot<T>(fn: (tx: WriteTx) => Promise<T>, timeoutMs = this.options.queryTimeoutMs): Promise<T> {
    return this.onReader(async (conn) => {
      await conn.run('BEGIN TRANSACTION');
      try {
        return await withDeadline(conn, timeoutMs, () => fn(new WriteTx(conn)));
      } finally {
        // Nothing was written: ending it either way releases the snapshot.
        await conn.run('ROLLBACK').catch(() => undefined);
      }
    });
  }

  /**
   * A read whose answer is reused until the next write commits: dashboards ask the same
   * aggregates over and over, and the data only changes when something is ingested or deleted.
   */
  cachedQuery<T = Row>(sql: string, params: Params = []): Promise<T[]> {
    const key = `${sql}\u0000${JSON.stringify(params, (_k, v) => (typeof v === 'bigint' ? String(v) : v))}`;
    const hit = this.cache.get(key);
    if (hit && hit.version === this.version) return hit.rows as Promise<T[]>;
    const rows = this.query<T>(sql, params);
    this.cache.set(key, { version: this.version, rows });
    rows.catch(() => this.cache.delete(key));
    // Oldest first out; a few hundred distinct dashboard queries is plenty.
    if (this.cache.size > 500) this.cache.delete(this.cache.keys().next().value!);
    return rows;
  }

  /** Runs `fn` in one write transaction; it commits when `fn` resolves and rolls back when it throws. */
  write<T>(fn: (tx: WriteTx) => Promise<T>, timeoutMs = this.options.queryTimeoutMs): Promise<T> {
    const { conn, lock } = this.writer;
    return lock.run(() => this.ifOpen(() => this.transaction(conn, fn, timeoutMs)));
  }

  private async transaction<T>(
    conn: DuckDBConnection,
    fn: (tx: WriteTx) => Promise<T>,
    timeoutMs: number,
  ): Promise<T> {
    await conn.run('BEGIN TRANSACTION');
    const tx = new WriteTx(conn, this.prepared);
    try {
      const result = await withDeadline(conn, timeoutMs, () => fn(tx));
      await conn.run('COMMIT');
      this.version++;
      // Still under the writer's lock: the next transaction sees what this one kept in memory.
      for (const done of tx.committed) done();
      return result;
    } catch (err) {
      await conn.run('ROLLBACK').catch(() => undefined);
      for (const undo of tx.rolledBack) undo();
      throw err;
    }
  }

  /**
   * Autocommit statements on the writer, between transactions: DDL at start, and work that may
   * fail without spoiling a transaction (a failed statement aborts the transaction it is in).
   */
  exclusive<T>(fn: (tx: WriteTx) => Promise<T>, timeoutMs = this.options.queryTimeoutMs): Promise<T> {
    const { conn, lock } = this.writer;
    return lock.run(() => this.ifOpen(() => withDeadline(conn, timeoutMs, () => fn(new WriteTx(conn)))));
  }

  private closing: Promise<void> | undefined;

  /** Refuses work once closing began; work that close() interrupted fails the same way. */
  private ifOpen<T>(fn: () => Promise<T>): Promise<T> {
    const closingError = () => new AppError(503, 'CLOSING', 'the service is shutting down');
    if (this.closing) return Promise.reject(closingError());
    return fn().catch((err: unknown) => {
      throw this.closing ? closingError() : err;
    });
  }

  /**
   * Stops what runs (interrupted inside DuckDB), refuses what waits, and closes the file once no
   * connection is in use: closing a connection under a running query crashes the process.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const all = [this.writer, ...this.readers];
      for (const c of all) c.conn.interrupt();
      await Promise.all(all.map((c) => c.lock.run(async () => undefined)));
      await this.prepared.destroy();
      for (const r of this.readers) r.conn.closeSync();
      this.writer.conn.closeSync();
      this.instance.closeSync();
    })();
    return this.closing;
  }
}

/**
 * Statements prepared once on the writer connection and reused: a hot write's statements are
 * the same text every time, and parsing and planning them was a third of its cost here.
 */
class PreparedStatements {
  private readonly statements = new Map<string, Promise<DuckDBPreparedStatement>>();
  constructor(private readonly conn: DuckDBConnection) {}

  get(sql: string): Promise<DuckDBPreparedStatement> {
    let statement = this.statements.get(sql);
    if (!statement) {
      statement = this.conn.prepare(sql);
      statement.catch(() => this.statements.delete(sql));
      this.statements.set(sql, statement);
      // A few dozen shapes of hot statement; beyond that, the oldest goes.
      if (this.statements.size > 64) {
        const [oldest, dropped] = this.statements.entries().next().value!;
        this.statements.delete(oldest);
        dropped.then((p) => p.destroySync()).catch(() => undefined);
      }
    }
    return statement;
  }

  destroy(): Promise<void> {
    const all = [...this.statements.values()];
    this.statements.clear();
    return Promise.allSettled(all.map((p) => p.then((s) => s.destroySync()))).then(() => undefined);
  }
}

/** The writer inside a transaction (or a reader inside a snapshot). */
export class WriteTx {
  constructor(
    readonly conn: DuckDBConnection,
    private readonly prepared?: PreparedStatements,
  ) {}
  /** Like `query`, with the statement prepared once per text on the writer (elsewhere, each time). */
  async queryPrepared<T = Row>(sql: string, params: Params | Bound): Promise<T[]> {
    const statement = await this.statement(sql);
    try {
      bindAll(statement, params);
      const reader = await statement.runAndReadAll();
      return reader.getRowObjectsJS().map((row) => toJson(row) as T);
    } finally {
      if (!this.prepared) statement.destroySync();
    }
  }
  async runPrepared(sql: string, params: Params | Bound): Promise<void> {
    const statement = await this.statement(sql);
    try {
      bindAll(statement, params);
      await statement.run();
    } finally {
      if (!this.prepared) statement.destroySync();
    }
  }
  private statement(sql: string): Promise<DuckDBPreparedStatement> {
    return this.prepared ? this.prepared.get(sql) : this.conn.prepare(sql);
  }
  /** Run after COMMIT succeeds (in-memory state that must follow the data, never lead it). */
  readonly committed: (() => void)[] = [];
  afterCommit(fn: () => void): void {
    this.committed.push(fn);
  }
  /** Run after a ROLLBACK (in-memory state changed in the transaction, to be undone or dropped). */
  readonly rolledBack: (() => void)[] = [];
  afterRollback(fn: () => void): void {
    this.rolledBack.push(fn);
  }
  async run(sql: string, params: Params = []): Promise<void> {
    await this.conn.run(sql, params);
  }
  query<T = Row>(sql: string, params: Params = []): Promise<T[]> {
    return readRows<T>(this.conn, sql, params);
  }
}

function bindAll(statement: DuckDBPreparedStatement, params: Params | Bound): void {
  if (params instanceof Bound) statement.bind(params.values, params.types as DuckDBType[]);
  else statement.bind(params);
}

async function readRows<T>(conn: DuckDBConnection, sql: string, params: Params): Promise<T[]> {
  const reader = await conn.runAndReadAll(sql, params);
  return reader.getRowObjectsJS().map((row) => toJson(row) as T);
}

async function withDeadline<T>(conn: DuckDBConnection, ms: number, fn: () => Promise<T>): Promise<T> {
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    conn.interrupt();
  }, ms);
  try {
    return await fn();
  } catch (err) {
    if (timedOut) throw queryTimeout(ms);
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/** DuckDB's JS values as JSON-friendly ones: bigint → number, Date → ISO string, recursively. */
export function toJson(value: unknown): unknown {
  if (typeof value === 'bigint') return Number(value);
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
  if (Array.isArray(value)) return value.map(toJson);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = toJson(v);
    return out;
  }
  return value;
}
