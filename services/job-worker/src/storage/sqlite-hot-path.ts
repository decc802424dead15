import { OUTBOX_TABLE } from '@qlab/events';
import Database from 'better-sqlite3';
import type { JobEventType } from '../events';
import { CLAIM_ORDER, claimCandidates } from './claim-sql';
import type { HotPath } from './hot-path';
import { jobEvent, jobTopic } from './job-events';
import { isBusy, retryBusy } from './sqlite-busy';

type Row = Record<string, unknown>;

/**
 * The queue's busiest statements on SQLite, on a dedicated better-sqlite3 connection with
 * cached prepared statements and BEGIN IMMEDIATE transactions. Through knex each of these cost
 * a statement compile and a transaction object per call (measured: about 4× slower). busy_timeout
 * is 0: SQLite's own wait would block the event loop, so a busy database is retried here,
 * asynchronously (retryBusy).
 *
 * Group commit: the claims, completions and heartbeats asked for in one turn of the event loop
 * (a process's slots finishing together) run in one transaction, and each caller's promise
 * settles when that transaction has committed, as before. A commit rewrites the pages it
 * touched into the WAL; a profile of the queue bench put 40 % of a worker in committing, one
 * job at a time. If one operation of a group fails for another reason than a busy database,
 * each is run again on its own, so only that one fails.
 */
export class SqliteHotPath implements HotPath {
  private readonly db: Database.Database;
  private readonly claims = new Map<number, Database.Statement>();
  private readonly outboxInsert: Database.Statement;
  private readonly completeStmt: Database.Statement;
  private readonly heartbeatStmt: Database.Statement;
  private readonly progressOf: Database.Statement;

  constructor(
    filename: string,
    private readonly events: boolean,
  ) {
    this.db = new Database(filename);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 0');
    this.outboxInsert = this.db.prepare(
      `insert into ${OUTBOX_TABLE} (event_id, topic, payload, created_at) values (?, ?, ?, ?)`,
    );
    this.completeStmt = this.db.prepare(
      `update jobs set status = 'completed', progress = 100, output = ?, completed_at = ?, worker_id = null, lease_expires_at = null
        where job_id = ? and status = 'processing' and worker_id = ? and attempt = ? returning *`,
    );
    this.heartbeatStmt = this.db.prepare(
      `update jobs set lease_expires_at = ?, progress = coalesce(?, progress)
        where job_id = ? and status = 'processing' and worker_id = ? and attempt = ? returning *`,
    );
    this.progressOf = this.db.prepare('select progress from jobs where job_id = ?');
  }

  /** Limits are written into the SQL (a bound LIMIT keeps SQLite from its top-1 plan: measured 2× slower). */
  private claimStatement(types: number, max: number): Database.Statement {
    const limit = Math.max(1, Math.min(100, Math.floor(max)));
    const key = types * 1000 + limit;
    let stmt = this.claims.get(key);
    if (!stmt) {
      const candidates = claimCandidates(types, String(limit));
      stmt = this.db.prepare(
        `update jobs set status = 'processing', worker_id = ?, lease_expires_at = ?, attempt = attempt + 1, started_at = ?, progress = 0
          where job_id ${limit === 1 ? '=' : 'in'} (select job_id from (${candidates}) as cs order by ${CLAIM_ORDER} limit ${limit})
            and status = 'queued'
          returning *`,
      );
      this.claims.set(key, stmt);
    }
    return stmt;
  }

  private event(
    type: JobEventType,
    row: Record<string, unknown>,
    now: number,
    extra: Record<string, unknown> = {},
  ): void {
    if (!this.events) return;
    const e = jobEvent(type, row, extra, now);
    this.outboxInsert.run(e.id, jobTopic(type), JSON.stringify(e), now);
  }

  private group: { op: () => unknown; resolve: (v: never) => void; reject: (e: unknown) => void }[] = [];

  /** Runs `op` inside the next group's transaction (see the class comment). */
  private grouped<T>(op: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.group.push({ op, resolve: resolve as (v: never) => void, reject });
      if (this.group.length === 1) setImmediate(() => this.commitGroup());
    });
  }

  private commitGroup(): void {
    const batch = this.group;
    this.group = [];
    const alone = (b: (typeof batch)[number]) =>
      retryBusy(async () => this.db.transaction(b.op).immediate()).then(
        (v) => b.resolve(v as never),
        b.reject,
      );
    if (batch.length === 1) {
      void alone(batch[0]!);
      return;
    }
    retryBusy(async () => this.db.transaction(() => batch.map((b) => b.op())).immediate()).then(
      (results) => {
        for (const [i, b] of batch.entries()) b.resolve(results[i] as never);
      },
      (err) => {
        if (isBusy(err)) for (const b of batch) b.reject(err);
        else for (const b of batch) void alone(b);
      },
    );
  }

  claim(workerId: string, taskTypes: string[], now: number, leaseMs: number, max: number): Promise<Row[]> {
    return this.grouped(() => this.claimNow(workerId, taskTypes, now, leaseMs, max));
  }

  complete(
    id: string,
    workerId: string,
    attempt: number,
    output: string,
    now: number,
  ): Promise<Row | undefined> {
    return this.grouped(() => this.completeNow(id, workerId, attempt, output, now));
  }

  heartbeat(
    id: string,
    workerId: string,
    attempt: number,
    leaseUntil: number,
    progress: number | null,
    now: number,
  ): Promise<Row | undefined> {
    return this.grouped(() => this.heartbeatNow(id, workerId, attempt, leaseUntil, progress, now));
  }

  /** Claims up to `max` jobs (inside a group's transaction). */
  private claimNow(workerId: string, taskTypes: string[], now: number, leaseMs: number, max: number): Row[] {
    const stmt = this.claimStatement(taskTypes.length, max);
    const rows = stmt.all(workerId, now + leaseMs, now, ...taskTypes.flatMap((t) => [t, now])) as Row[];
    for (const row of rows) this.event('job.started', row, now, { worker_id: workerId });
    return rows;
  }

  private completeNow(
    id: string,
    workerId: string,
    attempt: number,
    output: string,
    now: number,
  ): Row | undefined {
    const row = this.completeStmt.get(output, now, id, workerId, attempt) as Row | undefined;
    if (row) this.event('job.completed', row, now, { output: JSON.parse(output) });
    return row;
  }

  private heartbeatNow(
    id: string,
    workerId: string,
    attempt: number,
    leaseUntil: number,
    progress: number | null,
    now: number,
  ): Row | undefined {
    const before = this.progressOf.get(id) as { progress: number } | undefined;
    const row = this.heartbeatStmt.get(leaseUntil, progress, id, workerId, attempt) as Row | undefined;
    if (row && progress !== null && before && Number(before.progress) !== Number(row.progress))
      this.event('job.progress', row, now);
    return row;
  }

  close(): void {
    this.db.close();
  }
}
