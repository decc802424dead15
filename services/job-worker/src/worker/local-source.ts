import type { Job } from '../domain/job';
import type { JobRepository } from '../storage/job-repository';
import type { JobWorkspace } from '../storage/workspace';
import type { JobSource } from './types';

/** Jobs straight from the database, files straight from the workspace (workers beside the server). */
export class LocalJobSource implements JobSource {
  constructor(
    private readonly repo: JobRepository,
    private readonly workspace: JobWorkspace,
    readonly leaseMs: number,
  ) {}

  claim(workerId: string, taskTypes: string[]) {
    return this.repo.claim(workerId, taskTypes, this.leaseMs);
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

  prepare(job: Job) {
    return this.workspace.create(job.job_id);
  }

  async finish(): Promise<void> {
    // Outputs are already in the workspace.
  }
}
