import type { Job } from '../domain/job';
import { JobLogs } from '../storage/job-logs';
import type { JobRepository } from '../storage/job-repository';
import type { JobFiles } from '../storage/workspace';
import type { JobSource } from './types';

/** Jobs straight from the database, files from the job's files (workers beside the server). */
export class LocalJobSource implements JobSource {
  /**
   * SQLite has one writer: with several worker processes, short single-job claims keep them
   * taking turns (measured: 10 k jobs/s), where claiming ten at a time made the other process
   * wait (2 k jobs/s). PostgreSQL gains from batches (SKIP LOCKED lets claimers work in parallel).
   */
  readonly maxClaimBatch: number | undefined;
  private readonly logs: JobLogs;
  /** Folders checked out for running jobs (blob store: local copies), by job id. */
  private readonly dirs = new Map<string, string>();

  constructor(
    private readonly repo: JobRepository,
    private readonly files: JobFiles,
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
    await this.let(job);
    await this.repo.fail(job.job_id, { workerId, attempt: job.attempt }, message);
  }

  async cancelled(job: Job, workerId: string) {
    await this.let(job);
    await this.repo.acknowledgeCancel(job.job_id, { workerId, attempt: job.attempt });
  }

  /** The lease went to another worker: its local copy goes, unreported. */
  async release(job: Job): Promise<void> {
    await this.let(job);
  }

  /** A failed or cancelled job's local copy goes (a folder store keeps its own folder). */
  private async let(job: Job): Promise<void> {
    const dir = this.dirs.get(job.job_id);
    this.dirs.delete(job.job_id);
    if (dir) await this.files.discard(dir).catch(() => undefined);
  }

  /** The job's folder (a folder store: no file-system work, so no-op jobs stay cheap; a blob store: a local copy). */
  async prepare(job: Job) {
    const dir = await this.files.checkout(job.job_id);
    this.dirs.set(job.job_id, dir);
    return dir;
  }

  async finish(job: Job, dir: string): Promise<void> {
    this.dirs.delete(job.job_id);
    await this.files.checkin(job.job_id, dir);
  }
}
