import { randomUUID } from 'node:crypto';
import type { EventData, Outbox } from '@qlab/events';
import { AppError, conflict, isPostgres, type Knex, notFound } from '@qlab/kit';
import { type Job, type JobStatus, type NewJob, retryBackoffMs } from '../domain/job';
import type { JobEvents, JobEventType } from '../events';
import type { HotPath } from './hot-path';
import { jobEventData, jobSubject } from './job-events';
import { PgHotPath } from './pg-hot-path';
import { retryBusy } from './sqlite-busy';
import { SqliteHotPath } from './sqlite-hot-path';

interface Row {
  job_id: string;
  task_type: string;
  params: string;
  status: string;
  progress: number;
  output: string | null;
  error_message: string | null;
  created_at: number | string;
  started_at: number | string | null;
  completed_at: number | string | null;
  retry_count: number;
  max_retries: number;
  created_by: string | null;
  priority: number;
  run_at: number | string;
  worker_id: string | null;
  lease_expires_at: number | string | null;
  attempt: number;
  cancel_requested: boolean | number;
  errors: string;
}

const n = (v: number | string | null): number | null => (v === null ? null : Number(v));

function fromRow(r: Row): Job {
  return {
    job_id: r.job_id,
    task_type: r.task_type,
    params: JSON.parse(r.params) as Record<string, unknown>,
    status: r.status as JobStatus,
    progress: Number(r.progress),
    output: r.output === null ? null : (JSON.parse(r.output) as Record<string, unknown>),
    error_message: r.error_message,
    created_at: Number(r.created_at),
    started_at: n(r.started_at),
    completed_at: n(r.completed_at),
    retry_count: Number(r.retry_count),
    max_retries: Number(r.max_retries),
    created_by: r.created_by,
    priority: Number(r.priority),
    run_at: Number(r.run_at),
    worker_id: r.worker_id,
    lease_expires_at: n(r.lease_expires_at),
    attempt: Number(r.attempt),
    cancel_requested: Boolean(r.cancel_requested),
    errors: JSON.parse(r.errors) as Job['errors'],
  };
}

export interface JobQuery {
  status?: JobStatus;
  task_type?: string;
  created_by?: string;
  limit: number;
  offset: number;
}

/** What a worker reports with: its id and the attempt it claimed (the fencing token). */
export interface Lease {
  workerId: string;
  attempt: number;
}

/**
 * The job queue over knex. Every state change is one transaction whose first statement is the
 * write (so SQLite takes its write lock before reading), with the event written in the same
 * transaction. Claims are atomic on both engines (PostgreSQL: FOR UPDATE SKIP LOCKED).
 */
export class JobRepository {
  private lastCreatedAt = 0;
  private readonly pg: boolean;
  private readonly hot: HotPath;

  constructor(
    readonly knex: Knex,
    private readonly outbox?: Outbox<JobEvents>,
    private readonly now: () => number = Date.now,
  ) {
    this.pg = isPostgres(knex);
    if (this.pg) {
      this.hot = new PgHotPath(knex, Boolean(outbox));
    } else {
      const filename = (knex.client.config.connection as { filename?: string } | undefined)?.filename;
      // The hot path opens its own connection, which an in-memory database would not share.
      if (!filename || filename === ':memory:')
        throw new Error('the job queue needs a SQLite file or PostgreSQL');
      this.hot = new SqliteHotPath(filename, Boolean(outbox));
    }
  }

  /** SQLite: one writer at a time for the whole database. */
  get singleWriter(): boolean {
    return !this.pg;
  }

  /** Closes the SQLite hot-path connection (the knex instance is the caller's to destroy). */
  close(): void {
    this.hot.close?.();
  }

  private async emit(
    trx: Knex.Transaction,
    type: JobEventType,
    job: Job,
    extra: Record<string, unknown> = {},
  ): Promise<void> {
    // jobEventData builds the fields the hot paths build too; the outbox checks them at run time.
    const data = jobEventData(job, extra) as EventData<JobEvents, typeof type>;
    await this.outbox?.record(trx, type, jobSubject(job.job_id), data, this.now());
  }

  private write<T>(work: (trx: Knex.Transaction) => Promise<T>): Promise<T> {
    return retryBusy(async () => {
      const result = await this.knex.transaction(work);
      this.outbox?.written();
      return result;
    });
  }

  /**
   * Adds jobs (one transaction for the batch) and emits job.queued for each. `alsoRecord` runs in
   * the same transaction (an Idempotency-Key record): if it throws, no job is added.
   */
  async add(
    jobs: NewJob[],
    alsoRecord?: (trx: Knex.Transaction, added: Job[]) => Promise<void>,
  ): Promise<Job[]> {
    const now = this.now();
    const rows = jobs.map((j) => {
      // Strictly increasing creation times keep FIFO order within one priority.
      const created = Math.max(now, this.lastCreatedAt + 1);
      this.lastCreatedAt = created;
      return {
        job_id: j.job_id ?? randomUUID(),
        task_type: j.task_type,
        params: JSON.stringify(j.params ?? {}),
        status: 'queued',
        progress: 0,
        output: null,
        error_message: null,
        created_at: created,
        started_at: null,
        completed_at: null,
        retry_count: 0,
        max_retries: j.max_retries ?? 3,
        created_by: j.created_by ?? null,
        priority: j.priority ?? 0,
        run_at: j.run_at ?? now,
        worker_id: null,
        lease_expires_at: null,
        attempt: 0,
        cancel_requested: false,
        errors: '[]',
      } satisfies Row;
    });
    return this.write(async (trx) => {
      for (let i = 0; i < rows.length; i += 500) await trx('jobs').insert(rows.slice(i, i + 500));
      const added = rows.map(fromRow);
      for (const job of added) await this.emit(trx, 'job.queued', job);
      await alsoRecord?.(trx, added);
      return added;
    }).catch((err) => {
      // Only the jobs table's key is a taken job_id; another table's (an Idempotency-Key) is the caller's.
      const message = (err as Error).message;
      if (/UNIQUE|duplicate key/i.test(message) && !/idempotency_keys/.test(message))
        throw conflict('a job with that job_id exists');
      throw err;
    });
  }

  async get(id: string): Promise<Job | undefined> {
    const row = await this.knex<Row>('jobs').where({ job_id: id }).first();
    return row ? fromRow(row) : undefined;
  }

  async mustGet(id: string): Promise<Job> {
    const job = await this.get(id);
    if (!job) throw notFound(`no job ${id}`);
    return job;
  }

  async list(q: JobQuery): Promise<{ items: Job[]; total: number }> {
    const base = () => {
      const b = this.knex<Row>('jobs');
      if (q.status) b.where({ status: q.status });
      if (q.task_type) b.where({ task_type: q.task_type });
      if (q.created_by) b.where({ created_by: q.created_by });
      return b;
    };
    const [rows, count] = await Promise.all([
      base()
        .select('*')
        .orderBy([{ column: 'created_at', order: 'desc' }])
        .limit(q.limit)
        .offset(q.offset),
      base().count({ n: '*' }).first(),
    ]);
    return { items: (rows as Row[]).map(fromRow), total: Number(count?.n ?? 0) };
  }

  /**
   * Claims the next runnable job of these types: highest priority, then oldest. It gets a
   * lease until now + leaseMs and a new attempt number. Returns undefined when none is due.
   */
  async claim(workerId: string, taskTypes: string[], leaseMs: number): Promise<Job | undefined> {
    return (await this.claimMany(workerId, taskTypes, leaseMs, 1))[0];
  }

  /** Claims up to `max` jobs at once (one statement), best first: a worker with free slots fills them in one go. */
  async claimMany(workerId: string, taskTypes: string[], leaseMs: number, max: number): Promise<Job[]> {
    if (taskTypes.length === 0 || max < 1) return [];
    const now = this.now();
    const rows = await this.hot.claim(workerId, taskTypes, now, leaseMs, max);
    if (rows.length > 0) this.outbox?.written();
    // RETURNING gives no order: hand the jobs out best first.
    rows.sort(
      (a, b) => Number(b.priority) - Number(a.priority) || Number(a.created_at) - Number(b.created_at),
    );
    return rows.map((r) => fromRow(r as unknown as Row));
  }

  private leaseLost(id: string, lease: Lease) {
    return conflict(
      `job ${id} is not held by ${lease.workerId} (attempt ${lease.attempt}); its lease was lost or it finished`,
    );
  }

  /** Updates a running job the caller still holds; anything else is a 409 (lease lost). */
  private async updateHeld(
    trx: Knex.Transaction,
    id: string,
    lease: Lease,
    changes: Partial<Row>,
  ): Promise<Job> {
    const result = await trx('jobs')
      .where({ job_id: id, status: 'processing', worker_id: lease.workerId, attempt: lease.attempt })
      .update(changes)
      .returning('*');
    const row = (result as Row[])[0];
    if (!row) throw this.leaseLost(id, lease);
    return fromRow(row);
  }

  /** Extends the lease and records progress. Tells the worker whether cancellation was asked for. */
  async heartbeat(id: string, lease: Lease, leaseMs: number, progress?: number): Promise<Job> {
    const p = progress === undefined ? null : Math.max(0, Math.min(100, Math.round(progress)));
    const now = this.now();
    const row = await this.hot.heartbeat(id, lease.workerId, lease.attempt, now + leaseMs, p, now);
    if (!row) throw this.leaseLost(id, lease);
    this.outbox?.written();
    return fromRow(row as unknown as Row);
  }

  async complete(id: string, lease: Lease, output: Record<string, unknown> | null): Promise<Job> {
    const row = await this.hot.complete(
      id,
      lease.workerId,
      lease.attempt,
      JSON.stringify(output ?? {}),
      this.now(),
    );
    if (!row) throw this.leaseLost(id, lease);
    this.outbox?.written();
    return fromRow(row as unknown as Row);
  }

  /**
   * The seed's update_job for progress and output: by the lease holder (with its lease), or by
   * an admin (no lease: any job that is not finished). Emits job.progress, or job.updated when
   * the output changed.
   */
  async update(
    id: string,
    patch: { progress?: number; output?: Record<string, unknown> | null },
    lease?: Lease,
  ): Promise<Job> {
    const changes: Partial<Row> = {};
    if (patch.progress !== undefined)
      changes.progress = Math.max(0, Math.min(100, Math.round(patch.progress)));
    if (patch.output !== undefined)
      changes.output = patch.output === null ? null : JSON.stringify(patch.output);
    return this.write(async (trx) => {
      let job: Job;
      if (lease) job = await this.updateHeld(trx, id, lease, changes);
      else {
        // The status is checked by the UPDATE itself: a completion committed a moment earlier
        // (PostgreSQL re-reads the row once its lock is free) is never overwritten.
        const [row] = (await trx('jobs')
          .where({ job_id: id })
          .whereIn('status', ['queued', 'processing'])
          .update(changes)
          .returning('*')) as Row[];
        if (!row) {
          const current = await trx<Row>('jobs').where({ job_id: id }).first();
          if (!current) throw notFound(`no job ${id}`);
          throw conflict(`job ${id} is ${current.status}; a finished job is not updated`);
        }
        job = fromRow(row);
      }
      await this.emit(trx, patch.output !== undefined ? 'job.updated' : 'job.progress', job, {
        ...(patch.output !== undefined ? { output: job.output } : {}),
      });
      return job;
    });
  }

  /** A failed attempt: retried with backoff while retries remain, else the job ends in error. */
  async fail(id: string, lease: Lease, message: string): Promise<Job> {
    return this.write(async (trx) => {
      const current = await trx<Row>('jobs').where({ job_id: id }).first();
      if (!current) throw notFound(`no job ${id}`);
      return this.failAttempt(trx, fromRow(current), message, lease);
    });
  }

  /**
   * Ends one attempt. `lease` names the holder that reports the failure; without it (the lease
   * sweep) the attempt is ended only if its lease is still over at `expiredBefore`, so a worker
   * that reported in the meantime keeps its job.
   */
  private async failAttempt(
    trx: Knex.Transaction,
    job: Job,
    message: string,
    lease?: Lease,
    expiredBefore?: number,
  ): Promise<Job> {
    const now = this.now();
    const errors = JSON.stringify(
      [...job.errors, { at: now, attempt: job.attempt, message: message.slice(0, 2000) }].slice(-10),
    );
    const retries = job.retry_count + 1;
    const base: Partial<Row> = {
      worker_id: null,
      lease_expires_at: null,
      error_message: message.slice(0, 2000),
      errors,
    };
    const held = (q: Knex.QueryBuilder) => {
      if (lease)
        q.where({
          job_id: job.job_id,
          status: 'processing',
          worker_id: lease.workerId,
          attempt: lease.attempt,
        });
      else q.where({ job_id: job.job_id, status: 'processing', attempt: job.attempt });
      if (expiredBefore !== undefined) q.where('lease_expires_at', '<', expiredBefore);
    };
    if (job.cancel_requested) {
      const [row] = (await trx('jobs')
        .where(held)
        .update({ ...base, status: 'cancelled', completed_at: now })
        .returning('*')) as Row[];
      if (!row) throw conflict(`job ${job.job_id} is no longer held by this attempt`);
      const cancelled = fromRow(row);
      await this.emit(trx, 'job.cancelled', cancelled);
      return cancelled;
    }
    if (retries <= job.max_retries) {
      const [row] = (await trx('jobs')
        .where(held)
        .update({
          ...base,
          status: 'queued',
          retry_count: retries,
          run_at: now + retryBackoffMs(retries),
          progress: 0,
        })
        .returning('*')) as Row[];
      if (!row) throw conflict(`job ${job.job_id} is no longer held by this attempt`);
      const retrying = fromRow(row);
      await this.emit(trx, 'job.retrying', retrying, {
        error_message: retrying.error_message,
        retry_count: retries,
        run_at: retrying.run_at,
      });
      return retrying;
    }
    const [row] = (await trx('jobs')
      .where(held)
      .update({ ...base, status: 'error', retry_count: retries - 1, completed_at: now })
      .returning('*')) as Row[];
    if (!row) throw conflict(`job ${job.job_id} is no longer held by this attempt`);
    const failed = fromRow(row);
    await this.emit(trx, 'job.failed', failed, { error_message: failed.error_message });
    return failed;
  }

  /** A worker stopped a job because cancellation was asked for. */
  async acknowledgeCancel(id: string, lease: Lease): Promise<Job> {
    return this.write(async (trx) => {
      const job = await this.updateHeld(trx, id, lease, {
        status: 'cancelled',
        completed_at: this.now(),
        worker_id: null,
        lease_expires_at: null,
      });
      await this.emit(trx, 'job.cancelled', job);
      return job;
    });
  }

  /** Queued jobs are cancelled at once; running ones are asked to stop (their worker sees it on its next heartbeat). */
  async cancel(id: string): Promise<Job> {
    return this.write(async (trx) => {
      const queued = (await trx('jobs')
        .where({ job_id: id, status: 'queued' })
        .update({ status: 'cancelled', completed_at: this.now() })
        .returning('*')) as Row[];
      if (queued[0]) {
        const job = fromRow(queued[0]);
        await this.emit(trx, 'job.cancelled', job);
        return job;
      }
      const running = (await trx('jobs')
        .where({ job_id: id, status: 'processing' })
        .update({ cancel_requested: true })
        .returning('*')) as Row[];
      if (running[0]) return fromRow(running[0]);
      const row = await trx<Row>('jobs').where({ job_id: id }).first();
      if (!row) throw notFound(`no job ${id}`);
      throw conflict(`job ${id} is already ${row.status}`);
    });
  }

  /** What a retried job starts from again: queued now, a fresh run (its error history is kept). */
  private retriedFields(): Partial<Row> {
    return {
      status: 'queued',
      run_at: this.now(),
      retry_count: 0,
      progress: 0,
      output: null,
      error_message: null,
      started_at: null,
      completed_at: null,
      worker_id: null,
      lease_expires_at: null,
      cancel_requested: false,
    };
  }

  /** A failed or cancelled job goes back to the queue as a fresh run; anything else is a 409. */
  async retry(id: string): Promise<Job> {
    return this.write(async (trx) => {
      const [row] = (await trx('jobs')
        .where({ job_id: id })
        .whereIn('status', ['error', 'cancelled'])
        .update(this.retriedFields())
        .returning('*')) as Row[];
      if (!row) {
        const current = await trx<Row>('jobs').where({ job_id: id }).first();
        if (!current) throw notFound(`no job ${id}`);
        throw conflict(`job ${id} is ${current.status}; only failed or cancelled jobs are retried`);
      }
      const job = fromRow(row);
      await this.emit(trx, 'job.queued', job);
      return job;
    });
  }

  /** Every failed job (of one task type, when given) back to the queue, at most `limit` per call. */
  async retryFailed(taskType: string | undefined, limit = 1000): Promise<string[]> {
    return this.write(async (trx) => {
      const ids = (
        (await trx('jobs')
          .where({ status: 'error', ...(taskType ? { task_type: taskType } : {}) })
          .orderBy('completed_at')
          .limit(limit)
          .select('job_id')) as { job_id: string }[]
      ).map((r) => r.job_id);
      if (ids.length === 0) return [];
      const rows = (await trx('jobs')
        .whereIn('job_id', ids)
        .where({ status: 'error' })
        .update(this.retriedFields())
        .returning('*')) as Row[];
      for (const row of rows) await this.emit(trx, 'job.queued', fromRow(row));
      return rows.map((r) => r.job_id);
    });
  }

  /** Deletes finished jobs that finished before `before`; returns their ids (their folders are the caller's to remove). */
  async pruneFinished(before: number, limit = 500): Promise<string[]> {
    return this.write(async (trx) => {
      const rows = (await trx('jobs')
        .whereIn('status', ['completed', 'error', 'cancelled'])
        .where('completed_at', '<', before)
        .orderBy('completed_at')
        .limit(limit)
        .select('job_id')) as { job_id: string }[];
      const ids = rows.map((r) => r.job_id);
      if (ids.length > 0) await trx('jobs').whereIn('job_id', ids).delete();
      return ids;
    });
  }

  async remove(id: string): Promise<boolean> {
    return this.write(async (trx) => (await trx('jobs').where({ job_id: id }).delete()) > 0);
  }

  /**
   * Jobs whose lease ran out (their worker died or hung) go back to the queue, counted as a
   * retry, or end in error when retries are used up; asked-to-cancel ones end cancelled.
   */
  async requeueExpired(
    limit = 100,
    onError: (jobId: string, err: unknown) => void = () => undefined,
  ): Promise<number> {
    const now = this.now();
    const expired = await this.knex<Row>('jobs')
      .where({ status: 'processing' })
      .where('lease_expires_at', '<', now)
      .limit(limit);
    let count = 0;
    for (const row of expired) {
      const job = fromRow(row);
      try {
        await this.write((trx) =>
          this.failAttempt(
            trx,
            job,
            `lease expired (worker ${job.worker_id} stopped reporting)`,
            undefined,
            now,
          ),
        );
        count++;
      } catch (err) {
        // The expected race: its worker reported (or finished) in the meantime, so it keeps it.
        if (err instanceof AppError && err.status === 409) continue;
        onError(job.job_id, err);
      }
    }
    return count;
  }

  async stats() {
    const now = this.now();
    const [byStatus, byType, oldest] = await Promise.all([
      this.knex('jobs').select('status').count({ n: '*' }).groupBy('status'),
      this.knex('jobs').select('task_type', 'status').count({ n: '*' }).groupBy('task_type', 'status'),
      this.knex('jobs').where({ status: 'queued' }).min({ t: 'created_at' }).first(),
    ]);
    const counts: Record<string, number> = Object.fromEntries(
      ['queued', 'processing', 'completed', 'error', 'cancelled'].map((s) => [s, 0]),
    );
    for (const r of byStatus as { status: string; n: number | string }[]) counts[r.status] = Number(r.n);
    const types: Record<string, Record<string, number>> = {};
    for (const r of byType as { task_type: string; status: string; n: number | string }[]) {
      types[r.task_type] ??= {};
      types[r.task_type]![r.status] = Number(r.n);
    }
    const oldestQueued = oldest?.t === null || oldest?.t === undefined ? null : Number(oldest.t);
    return {
      by_status: counts,
      by_task_type: types,
      queue_depth: counts.queued ?? 0,
      oldest_queued_age_ms: oldestQueued === null ? null : now - oldestQueued,
    };
  }

  /**
   * Jobs completed in each `bucketMs` of the last `spanMs` (the last bucket ends at the next
   * whole bucket), oldest first, empty buckets included: counted by the database on the
   * (status, completed_at) index.
   */
  async completedSeries(spanMs: number, bucketMs: number): Promise<{ at: number; completed: number }[]> {
    const to = Math.ceil(this.now() / bucketMs) * bucketMs;
    const from = to - spanMs;
    const rows = (await this.knex('jobs')
      .where({ status: 'completed' })
      .where('completed_at', '>=', from)
      .where('completed_at', '<', to)
      .select(
        // SQLite binds JS numbers as REAL, so the division is cast back to a whole bucket.
        this.knex.raw('cast((completed_at - ?) / ? as integer) as bucket', [from, bucketMs]),
      )
      .count({ n: '*' })
      .groupByRaw('1')) as { bucket: number | string; n: number | string }[];
    const counts = new Map(rows.map((r) => [Math.floor(Number(r.bucket)), Number(r.n)]));
    const out: { at: number; completed: number }[] = [];
    for (let i = 0, at = from; at < to; i++, at += bucketMs) out.push({ at, completed: counts.get(i) ?? 0 });
    return out;
  }
}
