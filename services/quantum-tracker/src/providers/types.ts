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
  /**
   * The provider says the billed time is final. IBM reports usage `pending` until it has
   * counted a job, which can come after the job completed; such jobs are re-read until then.
   */
  billing_final: boolean;
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

/** What the sync knows when it asks a provider for jobs. */
export interface JobsContext {
  /**
   * The last good job sync − an overlap; undefined on the first sync, and on a periodic full
   * read: read everything. Unfinished jobs older than this are the client's to re-read
   * (`openIds`): they never hold the window open.
   */
  since: Date | undefined;
  /** Recorded jobs of this account that are not finished yet. */
  openIds: string[];
  /** Of `ids`, the ones already recorded. */
  known(ids: string[]): Promise<Set<string>>;
  /** Aborted when the sync is stopped or past its deadline: stop paging. */
  signal?: AbortSignal;
}

/** What a job's own record adds to the list: times and final billing (IBM /v1/jobs/{id}/metrics). */
export interface JobDetails {
  id: string;
  started_at: string | null;
  ended_at: string | null;
  quantum_seconds: number | null;
  billing_final: boolean;
  /** The read failed (this job only): it is tried again later, with a growing wait. */
  error?: string;
  /** The provider has no record to read (deleted, or not this key's): nothing more will come. */
  gone?: boolean;
}

export interface ProviderClient {
  /** The provider the rows belong to: `ibm`, `ionq`. */
  readonly provider: string;
  /**
   * This client's account: the provider's name for the first key, `ibm:<label>` for more keys
   * of one instance (each sees only its owner's jobs). Sync state is kept per account.
   */
  readonly name: string;
  readonly region: string | null;
  /** Several accounts of one instance see the same backends: only one reads them. */
  readonly readsBackends: boolean;
  /** The API base URL in use (logged at start). */
  readonly baseUrl: string;
  /**
   * For a job list in no documented order (IonQ): read it whole this often; between, the
   * client stops at jobs already recorded. Absent: the list's order is documented (IBM).
   */
  readonly fullReadEveryMs?: number;
  backends(signal?: AbortSignal): Promise<BackendSnapshot[]>;
  jobs(ctx: JobsContext): Promise<JobSnapshot[]>;
  /** Re-reads jobs whose list entry lacks times or final billing; absent when the list has it all. */
  details?(ids: string[], signal?: AbortSignal): Promise<JobDetails[]>;
  usage(signal?: AbortSignal): Promise<UsageSnapshot | null>;
}
