import { OUTBOX_TABLE } from '@qlab/events';
import type { Knex } from '@qlab/kit';
import type { JobEventType } from '../events';
import { CLAIM_ORDER, claimCandidates } from './claim-sql';
import type { HotPath } from './hot-path';
import { jobEventTemplate, jobTopic, pgJobEventSql } from './job-events';

/** One completion as the repository asks for it (HotPath.complete). */
interface Completion {
  id: string;
  workerId: string;
  attempt: number;
  output: string;
  now: number;
}

interface Settle {
  resolve: (row: Record<string, unknown> | undefined) => void;
  reject: (err: unknown) => void;
}

interface PgConnection {
  query(q: { name: string; text: string; values: unknown[] }): Promise<{ rows: Record<string, unknown>[] }>;
}

/**
 * The queue's busiest changes on PostgreSQL as single statements: the update and its event
 * (the outbox insert, the CloudEvent built in SQL from job-events.ts) in one CTE, so each costs one round trip
 * and is atomic without BEGIN/COMMIT. Claims lock with FOR UPDATE SKIP LOCKED.
 */
export class PgHotPath implements HotPath {
  private readonly texts = new Map<string, string>();

  constructor(
    private readonly knex: Knex,
    private readonly events: boolean,
  ) {}

  /**
   * Runs a statement as a named prepared statement on a pooled connection: PostgreSQL parses
   * and plans each of these CTEs once per connection instead of on every job.
   */
  private async run(
    name: string,
    sql: string,
    values: unknown[],
  ): Promise<Record<string, unknown> | undefined> {
    return (await this.runAll(name, sql, values))[0];
  }

  private async runAll(name: string, sql: string, values: unknown[]): Promise<Record<string, unknown>[]> {
    let text = this.texts.get(name);
    if (!text) {
      let n = 0;
      text = sql.replace(/\?/g, () => `$${++n}`);
      this.texts.set(name, text);
    }
    const client = this.knex.client as {
      acquireConnection(): Promise<PgConnection>;
      releaseConnection(c: PgConnection): Promise<void>;
    };
    const conn = await client.acquireConnection();
    try {
      const result = await conn.query({ name, text, values });
      return result.rows;
    } finally {
      await client.releaseConnection(conn);
    }
  }

  /**
   * `insert into outbox … select … from <from>`: a job event for each row there, its payload built
   * by pgJobEventSql from the one job-event definition. Binds, in order: topic, envelope
   * template, created_at, whether events are on (eventArgs), then whatever `condition` binds.
   */
  private eventCte(options: { from: string; extra?: Record<string, string>; condition?: string }): string {
    return `ev as (
        insert into ${OUTBOX_TABLE} (event_id, topic, payload, created_at)
        select e.id, ?, ${pgJobEventSql('e.id', options.extra)}, ?
          from ${options.from} cross join lateral (select gen_random_uuid()::text as id) e
         where ?::boolean and ${options.condition ?? 'true'}
        returning 1)`;
  }

  private eventArgs(type: JobEventType, now: number): (string | number | boolean)[] {
    return [jobTopic(type), jobEventTemplate(type, now), now, this.events];
  }

  /** Claims up to `max` jobs in one statement. */
  async claim(
    workerId: string,
    taskTypes: string[],
    now: number,
    leaseMs: number,
    max: number,
  ): Promise<Record<string, unknown>[]> {
    const candidates = claimCandidates(taskTypes.length, '?', 'for update skip locked');
    const ev = this.eventCte({ from: 'claimed', extra: { worker_id: 'worker_id' } });
    return this.runAll(
      `qlab_claim_${taskTypes.length}`,
      `with picked as (select job_id from (${candidates}) as cs order by ${CLAIM_ORDER} limit ?),
            claimed as (
              update jobs j set status = 'processing', worker_id = ?, lease_expires_at = ?, attempt = j.attempt + 1,
                                started_at = ?, progress = 0
                from picked where j.job_id = picked.job_id and j.status = 'queued'
              returning j.*),
            ${ev}
       select * from claimed`,
      [
        ...taskTypes.flatMap((t) => [t, now, max]),
        max,
        workerId,
        now + leaseMs,
        now,
        ...this.eventArgs('job.started', now),
      ],
    );
  }

  /**
   * Completions asked for in one turn of the event loop go out as one statement, one commit
   * (group commit: each caller's promise settles after it, with its own row). A job asked twice
   * in one group goes alone, so the second is refused as before; if the group's statement
   * fails, each completion is tried alone, so only a failing one fails.
   */
  private completions = new Map<string, Completion & { settle: Settle }>();

  complete(
    id: string,
    workerId: string,
    attempt: number,
    output: string,
    now: number,
  ): Promise<Record<string, unknown> | undefined> {
    const c = { id, workerId, attempt, output, now };
    if (this.completions.has(id)) return this.completeOne(c);
    return new Promise((resolve, reject) => {
      this.completions.set(id, { ...c, settle: { resolve, reject } });
      if (this.completions.size === 1) setImmediate(() => void this.completeGroup());
    });
  }

  private async completeGroup(): Promise<void> {
    const group = [...this.completions.values()];
    this.completions = new Map();
    const alone = (c: (typeof group)[number]) => this.completeOne(c).then(c.settle.resolve, c.settle.reject);
    if (group.length === 1) {
      void alone(group[0]!);
      return;
    }
    const now = Math.max(...group.map((c) => c.now));
    const ev = this.eventCte({ from: 'done', extra: { output: 'output::jsonb' } });
    try {
      const rows = await this.runAll(
        'qlab_complete_group',
        `with input as (
           select * from unnest(?::text[], ?::text[], ?::int[], ?::text[]) as i(job_id, worker_id, attempt, output)),
         done as (
           update jobs j set status = 'completed', progress = 100, output = i.output, completed_at = ?,
                             worker_id = null, lease_expires_at = null
             from input i
            where j.job_id = i.job_id and j.status = 'processing' and j.worker_id = i.worker_id and j.attempt = i.attempt
           returning j.*),
         ${ev}
         select * from done`,
        [
          group.map((c) => c.id),
          group.map((c) => c.workerId),
          group.map((c) => c.attempt),
          group.map((c) => c.output),
          now,
          ...this.eventArgs('job.completed', now),
        ],
      );
      const byId = new Map(rows.map((r) => [String(r.job_id), r]));
      for (const c of group) c.settle.resolve(byId.get(c.id));
    } catch {
      for (const c of group) void alone(c);
    }
  }

  private completeOne({
    id,
    workerId,
    attempt,
    output,
    now,
  }: Completion): Promise<Record<string, unknown> | undefined> {
    const ev = this.eventCte({ from: 'done', extra: { output: 'output::jsonb' } });
    return this.run(
      'qlab_complete',
      `with done as (
         update jobs set status = 'completed', progress = 100, output = ?, completed_at = ?, worker_id = null, lease_expires_at = null
          where job_id = ? and status = 'processing' and worker_id = ? and attempt = ?
         returning *),
       ${ev}
       select * from done`,
      [output, now, id, workerId, attempt, ...this.eventArgs('job.completed', now)],
    );
  }

  async heartbeat(
    id: string,
    workerId: string,
    attempt: number,
    leaseUntil: number,
    progress: number | null,
    now: number,
  ): Promise<Record<string, unknown> | undefined> {
    // An event only when a reported progress changed the stored one.
    const ev = this.eventCte({
      from: 'before, beat',
      condition: 'old_progress <> beat.progress and ?::boolean',
    });
    return this.run(
      'qlab_heartbeat',
      `with before as (select progress as old_progress from jobs where job_id = ?),
            beat as (
              update jobs set lease_expires_at = ?, progress = coalesce(?, progress)
               where job_id = ? and status = 'processing' and worker_id = ? and attempt = ?
              returning *),
            ${ev}
       select * from beat`,
      [
        id,
        leaseUntil,
        progress,
        id,
        workerId,
        attempt,
        ...this.eventArgs('job.progress', now),
        progress !== null,
      ],
    );
  }
}
