/**
 * The provider interface: everything the tracker needs from a quantum cloud. Adding a provider
 * is one file implementing this (and one line in providers/index.ts).
 */

/** Normalized job states (reference: quantum-providers.md §4); `raw_status` keeps the provider's word. */
export const JOB_STATUSES = [
  'validating',
  'queued',
  'running',
  'completed',
  'failed',
  'cancelled',
  'unknown',
] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];
export const TERMINAL: ReadonlySet<JobStatus> = new Set(['completed', 'failed', 'cancelled']);

export const BACKEND_STATUSES = ['online', 'paused', 'offline'] as const;
export type BackendStatus = (typeof BACKEND_STATUSES)[number];

export interface BackendSnapshot {
  name: string;
  status: BackendStatus;
  raw_status: string;
  status_reason: string | null;
  is_simulator: boolean;
  qubits: number | null;
  queue_length: number | null;
  /** Typical wait, from the provider (IBM wait_time_seconds, IonQ average_queue_time). */
  wait_seconds_avg: number | null;
  wait_seconds_p95: number | null;
  processor: string | null;
  degraded: boolean;
  region: string | null;
  /** Whatever else the provider said about the device, kept as JSON. */
  details: Record<string, unknown>;
}

export interface JobSnapshot {
  id: string;
  backend: string | null;
  status: JobStatus;
  raw_status: string;
  program: string | null;
  user_id: string | null;
  created_at: string;
  started_at: string | null;
  ended_at: string | null;
  /** Billed quantum time, when known. */
  quantum_seconds: number | null;
  shots: number | null;
  tags: string[];
  failure_reason: string | null;
  session_id: string | null;
}

export interface UsageSnapshot {
  consumed_seconds: number;
  limit_seconds: number | null;
  period_start: string | null;
  period_end: string | null;
}

export interface ProviderClient {
  readonly name: string;
  readonly region: string | null;
  backends(): Promise<BackendSnapshot[]>;
  /**
   * Jobs created at or after `since` (all jobs when undefined), newest first as providers page
   * them. The sync passes the older of the last sync time and the oldest unfinished job.
   */
  jobs(since: Date | undefined): Promise<JobSnapshot[]>;
  usage(): Promise<UsageSnapshot | null>;
}
