import type { Job } from '../domain/job';
import { JobLogs } from '../storage/job-logs';
import type { JobRepository } from '../storage/job-repository';
import type { JobWorkspace } from '../storage/workspace';
import type { JobSource } from './types';

/** Jobs straight from the database, files straight from the workspace (workers beside the server). */
export class LocalJobSource implements JobSource {
  /**
   * SQLite has one writer: with several worker processes, short single-job claims keep them
   * taking turns (measured: 10 k jobs/s), where claiming ten at a time made the other process
   * wait (2 k jobs/s). PostgreSQL gains from batches (SKIP LOCKED lets claimers work in parallel).
   */
  readonly maxClaimBatch: number | undefined;
  private readonly logs: JobLogs;

  constructor(
    private readonly repo: JobRepository,
    private readonly workspace: JobWorkspace,
    readonly leaseMs: number,
  ) {
    this.maxClaimBatch = repo.singleWriter ? 1 : undefined;
    this.logs = new JobLogs(repo.knex);
  }

  async appendLogs(job: Job, workerId: string, lines: string[]) {
    await this.logs.append(job.job_id, { workerId, attempt: job.attempt }, lines);
  }

  claim(workerId: string, taskTypes: string[], max: number) {
    return this.repo.claimMany(workerId, taskTypes, this.leaseMs, max);
  }

  async heartbeat(job: Job, workerId: string, progress: number) {
    const j = await this.repo.heartbeat(
      job.job_id,
      { workerId, attempt: job.attempt },
      this.leaseMs,
      progress,
    );
    return { cancelRequested: j.cancel_requested };
  }

  async complete(job: Job, workerId: string, output: Record<string, unknown>) {
    await this.repo.complete(job.job_id, { workerId, attempt: job.attempt }, output);
  }

  async fail(job: Job, workerId: string, message: string) {
    await this.repo.fail(job.job_id, { workerId, attempt: job.attempt }, message);
  }

  async cancelled(job: Job, workerId: string) {
    await this.repo.acknowledgeCancel(job.job_id, { workerId, attempt: job.attempt });
  }

  /** The job's folder; no file-system work here (no-op jobs stay cheap). Handlers create output/ as they write. */
  async prepare(job: Job) {
    return this.workspace.jobDir(job.job_id);
  }

  async finish(): Promise<void> {
    // Outputs are already in the workspace.
  }
}
