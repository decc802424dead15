import { conflict, isPostgres, type Knex, notFound } from '@qlab/kit';
import type { Lease } from './job-repository';
import { retryBusy } from './sqlite-busy';

/** Most lines kept per job (all attempts together); later lines are counted, not stored. */
export const LOG_LINES_PER_JOB = 10_000;
/** Longest line kept, in characters (a handler's line is cut to this before it is sent). */
export const LOG_LINE_MAX = 8192;

export interface LogLine {
  seq: number;
  attempt: number;
  at: number;
  line: string;
}

/**
 * The lines a job's handler wrote with `log(line)`, kept with the job (deleted with it). Only the
 * worker holding the job's lease can add lines, so a worker that lost its lease cannot write into
 * the attempt that replaced it.
 */
export class JobLogs {
  constructor(
    private readonly knex: Knex,
    private readonly now: () => number = Date.now,
  ) {}

  /** Appends lines for the held attempt; says how many were kept and how many the per-job cap dropped. */
  async append(id: string, lease: Lease, lines: string[]): Promise<{ kept: number; dropped: number }> {
    return retryBusy(() =>
      this.knex.transaction(async (trx) => {
        const holder = trx('jobs')
          .where({ job_id: id, status: 'processing', worker_id: lease.workerId, attempt: lease.attempt })
          .first('job_id');
        // PostgreSQL: the row stays locked, so a requeue cannot slip between check and insert
        // (SQLite's one writer already keeps it out).
        const held = await (isPostgres(this.knex) ? holder.forUpdate() : holder);
        if (!held)
          throw conflict(
            `job ${id} is not held by ${lease.workerId} (attempt ${lease.attempt}); its lease was lost or it finished`,
          );
        const count = await trx('job_logs').where({ job_id: id }).count({ n: '*' }).first();
        const room = Math.max(0, LOG_LINES_PER_JOB - Number(count?.n ?? 0));
        const kept = lines.slice(0, room);
        const at = this.now();
        const rows = kept.map((line) => ({
          job_id: id,
          attempt: lease.attempt,
          at,
          line: line.slice(0, LOG_LINE_MAX),
        }));
        // knex writes a multi-row SQLite insert as one compound SELECT, which SQLite caps at 500 terms.
        for (let i = 0; i < rows.length; i += 250) await trx('job_logs').insert(rows.slice(i, i + 250));
        return { kept: kept.length, dropped: lines.length - kept.length };
      }),
    );
  }

  /** Lines after `after` (a seq from an earlier page), oldest first; 404 for an unknown job. */
  async page(id: string, after: number, limit: number): Promise<{ lines: LogLine[]; next_after: number }> {
    const job = await this.knex('jobs').where({ job_id: id }).first('job_id');
    if (!job) throw notFound(`no job ${id}`);
    const rows = (await this.knex('job_logs')
      .where({ job_id: id })
      .andWhere('seq', '>', after)
      .orderBy('seq')
      .limit(limit)
      .select('seq', 'attempt', 'at', 'line')) as LogLine[];
    const lines = rows.map((r) => ({
      seq: Number(r.seq),
      attempt: Number(r.attempt),
      at: Number(r.at),
      line: r.line,
    }));
    return { lines, next_after: lines.at(-1)?.seq ?? after };
  }
}
