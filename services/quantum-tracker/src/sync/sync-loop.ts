import type { Outbox } from '@qlab/events';
import { coerceError, type Knex, type Logger } from '@qlab/kit';
import type { TrackerEvents } from '../events';
import { ProviderError, shortError } from '../providers/http';
import { type JobsContext, type ProviderClient, TERMINAL } from '../providers/types';
import type { Recorder } from '../storage/recorder';
import type { LiveHub } from './hub';

export type SyncKind = 'all' | 'jobs' | 'backends';

export interface SyncReport {
  provider: string;
  kind: SyncKind;
  ok: boolean;
  error?: string;
  /** Stopped before it finished (the tracker stopping, or leadership handed over). */
  cancelled?: boolean;
  jobs_seen: number;
  jobs_changed: number;
  /** Jobs whose own record (times, final billing) was read this sync. */
  jobs_detailed: number;
  /** Jobs whose own record could not be read this sync (each is tried again later). */
  detail_errors: number;
  backends_seen: number;
  duration_ms: number;
}

/** Jobs are re-read from a little before the last good sync, so late writes at the provider are not missed. */
const OVERLAP_MS = 5 * 60_000;
const TERMINAL_SQL = [...TERMINAL];
/** A sync that takes longer than this is ended (a provider that pages forever, a stuck call). */
const SYNC_DEADLINE_MS = 15 * 60_000;
/** Pending billing is re-read for this long after a job ended; IBM settles it within hours. */
const BILLING_PATIENCE_MS = 30 * 86_400_000;
const STARTED_SQL = ['running', ...TERMINAL_SQL];

export interface SyncDeps {
  knex: Knex;
  recorder: Recorder;
  outbox?: Outbox<TrackerEvents>;
  hub: LiveHub;
  logger: Logger;
  intervalMs: number;
  /** Jobs re-read per sync for times and final billing (TRACKER_DETAILS_PER_SYNC). Default 500. */
  detailsPerSync?: number;
  now?: () => number;
}

/**
 * One account's sync: on a timer, on demand, never two at once. Any failure, the provider's or
 * the database's, is recorded where it can be (with the provider's status and message) and
 * announced; the next try waits for Retry-After or an exponential backoff, and the data already
 * recorded keeps being served. Nothing a sync does can end the process.
 */
export class ProviderSync {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<SyncReport> | undefined;
  /** Aborts the sync in progress (stop()). */
  private abort: AbortController | undefined;
  private stopped = false;
  private failures = 0;
  private lastRetryAfter: number | undefined;

  constructor(
    private readonly client: ProviderClient,
    private readonly deps: SyncDeps,
  ) {}

  get name(): string {
    return this.client.name;
  }

  private now(): number {
    return (this.deps.now ?? Date.now)();
  }

  start(): void {
    this.stopped = false;
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.abort?.abort(new ProviderError(this.client.name, 0, 'the tracker is stopping'));
    await this.running?.catch(() => undefined);
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.sync('all').then(
        (r) => this.schedule(r.ok ? this.deps.intervalMs : this.backoffMs()),
        // run() settles with a report; this is the last guard, never an unhandled rejection.
        (err: unknown) => {
          this.deps.logger.error({ err: coerceError(err), provider: this.name }, 'sync crashed');
          this.failures++;
          this.schedule(this.backoffMs());
        },
      );
    }, delayMs);
    this.timer.unref();
  }

  /** Doubling from the interval per failure (at most 32×, and 30 min), or longer if the provider said so. */
  private backoffMs(): number {
    const exp = Math.min(this.deps.intervalMs * 2 ** Math.min(this.failures - 1, 5), 30 * 60_000);
    return Math.max(this.lastRetryAfter ?? 0, exp);
  }

  /** Runs a sync now, or joins the one in progress. */
  sync(kind: SyncKind = 'all'): Promise<SyncReport> {
    if (!this.running) {
      this.running = this.run(kind).finally(() => {
        this.running = undefined;
      });
    }
    return this.running;
  }

  private async run(kind: SyncKind): Promise<SyncReport> {
    const started = this.now();
    const report: SyncReport = {
      provider: this.client.name,
      kind,
      ok: true,
      jobs_seen: 0,
      jobs_changed: 0,
      jobs_detailed: 0,
      detail_errors: 0,
      backends_seen: 0,
      duration_ms: 0,
    };
    const abort = new AbortController();
    this.abort = abort;
    const signal = AbortSignal.any([abort.signal, AbortSignal.timeout(SYNC_DEADLINE_MS)]);
    try {
      await this.steps(kind, started, report, signal);
      this.failures = 0;
      this.lastRetryAfter = undefined;
    } catch (err) {
      if (abort.signal.aborted) {
        // stop(): the tracker is stopping or another replica took this account over. Not the
        // provider's failure: nothing is recorded against it, and the next leader syncs.
        report.ok = false;
        report.cancelled = true;
        report.error = 'cancelled: this replica stopped or handed the sync over';
        this.deps.logger.info({ provider: this.name }, 'sync cancelled');
      } else await this.recordFailure(kind, started, report, err);
    }
    report.duration_ms = this.now() - started;
    await this.deps
      .knex('sync_runs')
      .insert({
        provider: this.client.name,
        kind,
        started_at: started,
        finished_at: started + report.duration_ms,
        ok: report.ok,
        error: report.error ?? null,
        jobs_seen: report.jobs_seen,
        jobs_changed: report.jobs_changed,
        backends_seen: report.backends_seen,
      })
      .catch((err: unknown) =>
        this.deps.logger.warn(
          { err: coerceError(err), provider: this.name },
          'could not record the sync run',
        ),
      );
    this.deps.hub.publish('dashboard', { type: 'sync.finished', ...report });
    return report;
  }

  private async steps(
    kind: SyncKind,
    started: number,
    report: SyncReport,
    signal: AbortSignal,
  ): Promise<void> {
    const { knex, recorder, hub } = this.deps;
    const { client } = this;
    const account = client.name;
    const state = await knex('providers').where({ name: account }).first();
    // A backends outage is reported, but does not stop job tracking: jobs are read regardless.
    let backendsFailed: unknown;
    if (kind !== 'jobs' && client.readsBackends) {
      try {
        const backends = await client.backends(signal);
        report.backends_seen = backends.length;
        const changes = await recorder.backends(client.provider, backends);
        for (const c of changes) hub.publish('dashboard', { type: 'backend.status_changed', ...c });
        hub.publish('queue', {
          type: 'queue.updated',
          provider: client.provider,
          backends: backends.map((b) => ({
            name: b.name,
            status: b.status,
            queue_length: b.queue_length,
            wait_seconds_avg: b.wait_seconds_avg,
          })),
        });
      } catch (err) {
        if (signal.aborted || kind === 'backends') throw err;
        backendsFailed = err;
      }
    }
    let fullRead = false;
    if (kind !== 'backends') {
      // Where job reading got to: jobs_synced_through (older versions: the last good sync).
      const through = numOr(state?.jobs_synced_through) ?? numOr(state?.last_success_at);
      const lastFull = numOr(state?.last_full_read_at);
      fullRead =
        through === null ||
        (client.fullReadEveryMs !== undefined &&
          (lastFull === null || started - lastFull >= client.fullReadEveryMs));
      const jobs = await client.jobs(await this.jobsContext(fullRead ? null : through, signal));
      // The first sync records history without announcing thousands of "new" jobs.
      const r = await recorder.jobs(client.provider, account, jobs, through !== null);
      report.jobs_seen = r.seen;
      report.jobs_changed = r.changed.length;
      for (const c of r.changed) hub.publish('jobs', { type: 'job.status_changed', ...c });
      const detailed = await this.readDetails(signal);
      report.jobs_detailed = detailed.read;
      report.detail_errors = detailed.failed;
      // Usage is the instance's: one account per instance reads it (the one reading backends).
      if (kind === 'all' && client.readsBackends) {
        const usage = await client.usage(signal);
        if (usage) await recorder.usage(client.provider, usage);
      }
      await knex('providers')
        .where({ name: account })
        .update({ jobs_synced_through: started, ...(fullRead ? { last_full_read_at: started } : {}) });
    }
    if (backendsFailed) throw backendsFailed;
    await knex('providers').where({ name: account }).update({
      last_sync_at: started,
      last_success_at: started,
      consecutive_failures: 0,
    });
  }

  /**
   * Jobs whose list entry is not the whole story, read from their own record: those that
   * turned running or finished since they were last read (IBM: start and end times are only in
   * /metrics), and finished ones whose billing is not final yet, however old (so costs are not
   * undercounted). Least recently read first, so every one gets its turn.
   */
  private async readDetails(signal: AbortSignal): Promise<{ read: number; failed: number }> {
    const { client } = this;
    const limit = this.deps.detailsPerSync ?? 500;
    if (!client.details || limit <= 0) return { read: 0, failed: 0 };
    const now = this.now();
    const due = (q: Knex.QueryBuilder) =>
      q.whereNull('details_retry_at').orWhere('details_retry_at', '<=', now);
    const rows = (await this.deps
      .knex('jobs')
      .select('id')
      .where({ provider: client.provider, account: client.name })
      .where((w) =>
        w
          .where((a) =>
            a
              .whereIn('status', STARTED_SQL)
              .where((b) =>
                b.whereNull('details_checked_at').orWhereRaw('details_checked_at < status_changed_at'),
              ),
          )
          .orWhere((a) =>
            a
              .whereIn('status', TERMINAL_SQL)
              .where('billing_final', false)
              .whereRaw('coalesce(ended_at, created_at) > ?', [now - BILLING_PATIENCE_MS])
              .where(due),
          )
          .orWhere('details_retry_at', '<=', now),
      )
      .orderByRaw('coalesce(details_checked_at, 0) asc, created_at desc')
      .limit(limit)) as { id: string }[];
    if (rows.length === 0) return { read: 0, failed: 0 };
    const details = await client.details(
      rows.map((r) => r.id),
      signal,
    );
    await this.deps.recorder.details(client.provider, details);
    const failed = details.filter((d) => d.error).length;
    if (failed > 0)
      this.deps.logger.warn(
        { provider: this.name, failed, first: details.find((d) => d.error)?.error },
        'some job records could not be read; they are tried again later',
      );
    return { read: details.length - failed, failed };
  }

  /** What the client needs to read only what changed: see JobsContext. */
  private async jobsContext(through: number | null, signal: AbortSignal): Promise<JobsContext> {
    const { knex } = this.deps;
    const { client } = this;
    // Oldest first: those waiting longest are re-read first when there are more than a sync reads.
    const open = (await knex('jobs')
      .select('id')
      .where({ provider: client.provider, account: client.name })
      .whereNotIn('status', TERMINAL_SQL)
      .orderBy('updated_at', 'asc')) as { id: string }[];
    return {
      since: through === null ? undefined : new Date(through - OVERLAP_MS),
      openIds: open.map((o) => o.id),
      signal,
      known: async (ids) => {
        if (ids.length === 0) return new Set();
        const rows = (await knex('jobs')
          .select('id')
          .where({ provider: client.provider })
          .whereIn('id', ids)) as { id: string }[];
        return new Set(rows.map((r) => r.id));
      },
    };
  }

  /** A failed sync, recorded as well as the database allows (it may be what failed). */
  private async recordFailure(kind: SyncKind, started: number, report: SyncReport, err: unknown) {
    const { knex, logger, outbox } = this.deps;
    const account = this.client.name;
    const e = coerceError(err);
    this.failures++;
    this.lastRetryAfter = err instanceof ProviderError ? err.retryAfterMs : undefined;
    report.ok = false;
    // Never a whole SQL statement with job data in it: it is stored, served and published.
    const message = shortError(e as Error & { sql?: unknown });
    report.error = message;
    const status = err instanceof ProviderError ? err.status : null;
    logger.warn({ provider: account, err: e, status }, 'provider sync failed; serving what is recorded');
    try {
      await knex.transaction(async (trx) => {
        await trx('providers').where({ name: account }).update({
          last_sync_at: started,
          last_error_at: started,
          last_error: message,
          last_error_status: status,
          consecutive_failures: this.failures,
        });
        await outbox?.record(trx, 'tracker.sync.failed', account, {
          provider: account,
          kind,
          error: message,
          status,
          consecutive_failures: this.failures,
          retry_after_ms: this.lastRetryAfter ?? null,
        });
      });
      outbox?.written();
    } catch (dbErr) {
      logger.error({ provider: account, err: coerceError(dbErr) }, 'could not record the failed sync');
    }
  }
}

const numOr = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
