/** The seed's job model plus what a durable queue needs: leases, attempts, delays, error history. */
export type JobStatus = 'queued' | 'processing' | 'completed' | 'error' | 'cancelled';
export const JOB_STATUSES: JobStatus[] = ['queued', 'processing', 'completed', 'error', 'cancelled'];

export interface Job {
  job_id: string;
  task_type: string;
  params: Record<string, unknown>;
  status: JobStatus;
  /** 0-100. */
  progress: number;
  output: Record<string, unknown> | null;
  error_message: string | null;
  /** Epoch milliseconds (seed). */
  created_at: number;
  started_at: number | null;
  completed_at: number | null;
  retry_count: number;
  max_retries: number;
  created_by: string | null;
  /** Higher runs first. */
  priority: number;
  /** Not before this time (delayed jobs, retry backoff). */
  run_at: number;
  /** Which worker holds the lease, and until when. */
  worker_id: string | null;
  lease_expires_at: number | null;
  /** Increments on every claim: the fencing token a worker must present to report. */
  attempt: number;
  /** Set when a running job was asked to stop. */
  cancel_requested: boolean;
  /** The last errors, oldest first (at most 10). */
  errors: { at: number; attempt: number; message: string }[];
}

export interface NewJob {
  job_id?: string;
  task_type: string;
  params?: Record<string, unknown>;
  priority?: number;
  max_retries?: number;
  created_by?: string | null;
  run_at?: number;
}

/** Exponential backoff between retries: 1 s, 2 s, 4 s … capped at 5 minutes. */
export function retryBackoffMs(retryCount: number, baseMs = 1000): number {
  return Math.min(baseMs * 2 ** Math.max(0, retryCount - 1), 300_000);
}
