import { OUTBOX_TABLE } from '@qlab/events';
import type { Knex } from '@qlab/kit';
import type { JobEventType } from '../events';
import { CLAIM_ORDER, claimCandidates } from './claim-sql';
import type { HotPath } from './hot-path';
import { jobEventTemplate, jobTopic, pgJobEventSql } from './job-events';

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

  async complete(
    id: string,
    workerId: string,
    attempt: number,
    output: string,
    now: number,
  ): Promise<Record<string, unknown> | undefined> {
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
