import { randomUUID } from 'node:crypto';
import { coerceError, type Logger } from '@qlab/kit';
import type { Job } from '../domain/job';
import { LogBuffer } from './log-buffer';
import type { Handler, JobSource } from './types';

export interface WorkerPoolOptions {
  source: JobSource;
  handlers: Record<string, Handler>;
  /** Default: host-pid-random. */
  workerId?: string;
  /** Task types to claim; default every type there is a handler for. */
  taskTypes?: string[];
  /** Jobs run at once. Default 1. */
  concurrency?: number;
  /** Wait when the queue is empty (ms). Default 1000. */
  pollIntervalMs?: number;
  logger: Logger;
}

/**
 * Claims jobs of the types it has handlers for and runs them, `concurrency` at a time. A running
 * job heartbeats every third of its lease; cancellation or a lost lease aborts the handler.
 * stop() stops claiming and waits for running jobs to finish (graceful drain).
 */
export class WorkerPool {
  readonly workerId: string;
  private readonly taskTypes: string[];
  private running = false;
  private slots: Promise<void>[] = [];
  private wakers = new Set<() => void>();
  readonly stats = { completed: 0, failed: 0, cancelled: 0 };

  constructor(private readonly o: WorkerPoolOptions) {
    this.workerId =
      o.workerId ?? `${process.env.HOSTNAME ?? 'worker'}-${process.pid}-${randomUUID().slice(0, 8)}`;
    this.taskTypes = o.taskTypes ?? Object.keys(o.handlers);
    const unknown = this.taskTypes.filter((t) => !o.handlers[t]);
    if (unknown.length > 0) throw new Error(`no handler for task types: ${unknown.join(', ')}`);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    // Two ways to fill the slots, chosen by measurement: on PostgreSQL one claimer taking all free
    // slots in one statement is fastest; on SQLite (maxClaimBatch 1) each slot claiming for itself
    // interleaves best with other processes' short write transactions.
    this.slots =
      this.o.source.maxClaimBatch === 1
        ? Array.from({ length: this.concurrency }, () => this.slotLoop())
        : [this.loop()];
    this.o.logger.info(
      { workerId: this.workerId, taskTypes: this.taskTypes, concurrency: this.concurrency },
      'worker started',
    );
  }

  private get concurrency(): number {
    return this.o.concurrency ?? 1;
  }

  /** Stops claiming; resolves when every running job has finished. */
  async stop(): Promise<void> {
    this.running = false;
    this.wakeAll();
    await Promise.all(this.slots);
    this.o.logger.info({ workerId: this.workerId, ...this.stats }, 'worker stopped');
  }

  private wakeAll(): void {
    for (const wake of this.wakers) wake();
  }

  private idle(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.wakers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.wakers.add(wake);
    });
  }

  /** One slot: claim a job, run it, repeat. */
  private async slotLoop(): Promise<void> {
    while (this.running) {
      let jobs: Job[] = [];
      try {
        jobs = await this.o.source.claim(this.workerId, this.taskTypes, 1);
      } catch (err) {
        this.o.logger.warn({ err: coerceError(err) }, 'claim failed; retrying');
      }
      if (jobs[0]) await this.run(jobs[0]);
      else await this.idle(this.o.pollIntervalMs ?? 1000);
    }
  }

  /** One claimer: whenever slots are free it claims that many jobs in one call and starts them. */
  private async loop(): Promise<void> {
    const active = new Set<Promise<void>>();
    while (this.running) {
      const free = this.concurrency - active.size;
      if (free === 0) {
        await this.idle(60_000); // woken when a job finishes
        continue;
      }
      let jobs: Job[] = [];
      try {
        jobs = await this.o.source.claim(this.workerId, this.taskTypes, free);
      } catch (err) {
        this.o.logger.warn({ err: coerceError(err) }, 'claim failed; retrying');
      }
      if (jobs.length === 0) {
        await this.idle(this.o.pollIntervalMs ?? 1000);
        continue;
      }
      for (const job of jobs) {
        const running: Promise<void> = this.run(job).finally(() => {
          active.delete(running);
          this.wakeAll();
        });
        active.add(running);
      }
    }
    await Promise.all(active);
  }

  private async run(job: Job): Promise<void> {
    const { source, logger } = this.o;
    const log = logger.child({ jobId: job.job_id, taskType: job.task_type, attempt: job.attempt });
    const abort = new AbortController();
    let progress = 0;
    let leaseLost = false;
    let cancelRequested = false;
    const lines = new LogBuffer((batch) => source.appendLogs(job, this.workerId, batch));
    const flushLogs = () =>
      lines
        .flush()
        .catch((err) => log.warn({ err: coerceError(err) }, 'could not send log lines; keeping them'));
    const beat = setInterval(
      () => {
        void flushLogs();
        source.heartbeat(job, this.workerId, progress).then(
          (r) => {
            if (r.cancelRequested && !cancelRequested) {
              cancelRequested = true;
              abort.abort(new Error('cancelled'));
            }
          },
          (err) => {
            if (/HTTP 409|is not held/.test((err as Error).message)) {
              leaseLost = true;
              abort.abort(new Error('lease lost'));
            }
            log.warn({ err: coerceError(err) }, 'heartbeat failed');
          },
        );
      },
      Math.max(200, Math.floor(source.leaseMs / 3)),
    );
    try {
      const dir = await source.prepare(job);
      const handler = this.o.handlers[job.task_type]!;
      let output: Record<string, unknown>;
      try {
        output = await handler({
          job,
          dir,
          signal: abort.signal,
          logger: log,
          progress: (p) => {
            progress = Math.max(0, Math.min(100, p));
          },
          log: (line) => lines.add(line),
        });
      } finally {
        // The lines go in while the lease is still held, before the job is reported.
        if (!leaseLost) await flushLogs();
      }
      if (leaseLost) {
        clearInterval(beat);
        await source.release?.(job);
        return;
      }
      if (cancelRequested) {
        clearInterval(beat);
        await source.cancelled(job, this.workerId);
        this.stats.cancelled++;
        return;
      }
      // Heartbeats go on while the outputs are stored (a blob store uploads them now), so a
      // long upload keeps the lease (found by the review: a big output lost it every attempt).
      try {
        await source.finish(job, dir);
      } finally {
        clearInterval(beat);
      }
      if (leaseLost) return;
      await source.complete(job, this.workerId, output);
      this.stats.completed++;
      log.info('job completed');
    } catch (err) {
      clearInterval(beat);
      const e = coerceError(err);
      if (leaseLost) {
        log.warn('lease lost: another worker may run this job; not reporting');
        await source.release?.(job).catch(() => undefined);
        return;
      }
      try {
        if (cancelRequested) {
          await source.cancelled(job, this.workerId);
          this.stats.cancelled++;
        } else {
          await source.fail(job, this.workerId, e.message);
          this.stats.failed++;
          log.warn({ err: e }, 'job attempt failed');
        }
      } catch (reportErr) {
        log.error({ err: coerceError(reportErr) }, 'could not report the job; its lease will expire');
      }
    }
  }
}
