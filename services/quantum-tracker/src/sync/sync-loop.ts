import type { Outbox } from '@qlab/events';
import { coerceError, type Knex, type Logger } from '@qlab/kit';
import { ProviderError } from '../providers/http';
import type { ProviderClient } from '../providers/types';
import type { Recorder } from '../storage/recorder';
import type { LiveHub } from './hub';

export type SyncKind = 'all' | 'jobs' | 'backends';

export interface SyncReport {
  provider: string;
  kind: SyncKind;
  ok: boolean;
  error?: string;
  jobs_seen: number;
  jobs_changed: number;
  backends_seen: number;
  duration_ms: number;
}

/** Jobs are re-read from a little before the last good sync, so late writes at the provider are not missed. */
const OVERLAP_MS = 5 * 60_000;
const TERMINAL_SQL = ['completed', 'failed', 'cancelled'];

/**
 * One provider's sync: on a timer, on demand, never two at once. A failure is recorded (with
 * the provider's status and message) and announced; the next try waits for Retry-After or an
 * exponential backoff, and the data already recorded keeps being served.
 */
export class ProviderSync {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<SyncReport> | undefined;
  private stopped = false;
  private failures = 0;

  constructor(
    private readonly client: ProviderClient,
    private readonly deps: {
      knex: Knex;
      recorder: Recorder;
      outbox?: Outbox;
      hub: LiveHub;
      logger: Logger;
      intervalMs: number;
      now?: () => number;
    },
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
    await this.running?.catch(() => undefined);
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      void this.sync('all').then((r) => {
        const backoff = r.ok ? this.deps.intervalMs : this.backoffMs();
        this.schedule(backoff);
      });
    }, delayMs);
    this.timer.unref();
  }

  private lastRetryAfter: number | undefined;

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
    const { knex, recorder, hub, logger } = this.deps;
    const provider = this.client.name;
    const started = this.now();
    const report: SyncReport = {
      provider,
      kind,
      ok: true,
      jobs_seen: 0,
      jobs_changed: 0,
      backends_seen: 0,
      duration_ms: 0,
    };
    const state = await knex('providers').where({ name: provider }).first();
    try {
      if (kind !== 'jobs') {
        const backends = await this.client.backends();
        report.backends_seen = backends.length;
        const changes = await recorder.backends(provider, backends);
        for (const c of changes) hub.publish('dashboard', { type: 'backend.status_changed', ...c });
        hub.publish('queue', {
          type: 'queue.updated',
          provider,
          backends: backends.map((b) => ({
            name: b.name,
            status: b.status,
            queue_length: b.queue_length,
            wait_seconds_avg: b.wait_seconds_avg,
          })),
        });
      }
      if (kind !== 'backends') {
        const since = await this.jobsSince(state?.last_success_at ?? null);
        const jobs = await this.client.jobs(since);
        // The first sync records history without announcing thousands of "new" jobs.
        const r = await recorder.jobs(provider, jobs, state?.last_success_at != null);
        report.jobs_seen = r.seen;
        report.jobs_changed = r.changed.length;
        for (const c of r.changed) hub.publish('jobs', { type: 'job.status_changed', ...c });
        if (kind === 'all') {
          const usage = await this.client.usage();
          if (usage) await recorder.usage(provider, usage);
        }
      }
      this.failures = 0;
      this.lastRetryAfter = undefined;
      await knex('providers')
        .where({ name: provider })
        .update({ last_sync_at: started, last_success_at: started, consecutive_failures: 0 });
    } catch (err) {
      const e = coerceError(err);
      this.failures++;
      this.lastRetryAfter = err instanceof ProviderError ? err.retryAfterMs : undefined;
      report.ok = false;
      report.error = e.message;
      const status = err instanceof ProviderError ? err.status : null;
      logger.warn({ provider, err: e, status }, 'provider sync failed; serving what is recorded');
      await knex.transaction(async (trx) => {
        await trx('providers').where({ name: provider }).update({
          last_sync_at: started,
          last_error_at: started,
          last_error: e.message,
          last_error_status: status,
          consecutive_failures: this.failures,
        });
        await this.deps.outbox?.record(trx, 'tracker.sync.failed', provider, {
          provider,
          kind,
          error: e.message,
          status,
          consecutive_failures: this.failures,
          retry_after_ms: this.lastRetryAfter ?? null,
        });
      });
      this.deps.outbox?.written();
    }
    report.duration_ms = this.now() - started;
    await knex('sync_runs').insert({
      provider,
      kind,
      started_at: started,
      finished_at: started + report.duration_ms,
      ok: report.ok,
      error: report.error ?? null,
      jobs_seen: report.jobs_seen,
      jobs_changed: report.jobs_changed,
      backends_seen: report.backends_seen,
    });
    hub.publish('dashboard', { type: 'sync.finished', ...report });
    return report;
  }

  /** The older of (last good sync − overlap) and the oldest job not yet finished; undefined = everything. */
  private async jobsSince(lastSuccess: number | null): Promise<Date | undefined> {
    if (lastSuccess === null) return undefined;
    const open = await this.deps
      .knex('jobs')
      .where('provider', this.client.name)
      .whereNotIn('status', TERMINAL_SQL)
      .min({ oldest: 'created_at' })
      .first();
    const oldestOpen = open?.oldest == null ? Number.POSITIVE_INFINITY : Number(open.oldest);
    return new Date(Math.min(Number(lastSuccess) - OVERLAP_MS, oldestOpen));
  }
}
