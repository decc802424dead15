import type { Logger } from '@qlab/kit';
import type { Job } from '../domain/job';

/** What a handler gets: its job, a local folder with input/ and output/, progress, and a stop signal. */
export interface HandlerContext {
  job: Job;
  /** Local job folder: input/ holds the inputs (if any), files written to output/ (create it) are the job's outputs. */
  dir: string;
  /** Reports progress 0-100 (sent with the next heartbeat). */
  progress(percent: number): void;
  /**
   * Adds a line to the job's log (`GET /jobs/{id}/logs`), sent with the heartbeats and before the
   * job is reported; kept with the job, at most 10,000 lines of 8 KiB.
   */
  log(line: string): void;
  /** Aborted when the job is cancelled or its lease is lost: stop soon and throw. */
  signal: AbortSignal;
  logger: Logger;
}

/** A task type's implementation: returns the job's output (JSON). Throwing fails the attempt. */
export type Handler = (ctx: HandlerContext) => Promise<Record<string, unknown>>;

/** Where a worker gets jobs from: the database directly (in-process pool) or the HTTP API (remote). */
export interface JobSource {
  /** Up to `max` jobs (one round trip); an empty list when none is due. */
  claim(workerId: string, taskTypes: string[], max: number): Promise<Job[]>;
  /** Extends the lease; says whether cancellation was asked for. Throws when the lease is lost. */
  heartbeat(job: Job, workerId: string, progress: number): Promise<{ cancelRequested: boolean }>;
  /** Adds log lines to the held attempt. Throws when the lease is lost. */
  appendLogs(job: Job, workerId: string, lines: string[]): Promise<void>;
  complete(job: Job, workerId: string, output: Record<string, unknown>): Promise<void>;
  fail(job: Job, workerId: string, message: string): Promise<void>;
  cancelled(job: Job, workerId: string): Promise<void>;
  /** A local folder for the job with its inputs in place. */
  prepare(job: Job): Promise<string>;
  /** Makes the outputs written to the folder the job's outputs (remote: uploads them). */
  finish(job: Job, dir: string): Promise<void>;
  /** Lets the job's folder go without reporting it (the lease was lost to another worker). */
  release?(job: Job): Promise<void>;
  /** How long a lease lasts, so heartbeats come well within it. */
  leaseMs: number;
  /** Most jobs worth claiming in one call (SQLite: 1, see LocalJobSource). Default: all free slots. */
  maxClaimBatch?: number;
}
