import { isoTime, nonNegative, num, ProviderError, requestJson, str } from './http';
import {
  type BackendSnapshot,
  type JobSnapshot,
  type JobStatus,
  type JobsContext,
  type ProviderClient,
  TERMINAL,
  type UsageSnapshot,
} from './types';

export interface IonqOptions {
  apiKey: string;
  /** Default https://api.ionq.co/v0.4 */
  apiUrl?: string;
  timeoutMs?: number;
  /** ms per unit of average_queue_time (see IONQ_QUEUE_TIME_UNIT_MS in config.ts). Default 1. */
  queueTimeUnitMs?: number;
  /** With it, usage() reads GET /organizations/{id}/usage. */
  organizationId?: string;
  /** Read the whole job list this often (IONQ_FULL_SYNC_EVERY). Default 1 h. */
  fullSyncEveryMs?: number;
  now?: () => number;
  fetch?: typeof fetch;
}

const PAGE = 100;
/** Pages one listing may take at most: a cursor that never ends does not hold a sync. */
const MAX_PAGES = 10_000;
/** The v0.4 JobStatus values of jobs not finished yet, each listed every sync. */
const OPEN_STATUSES = ['submitted', 'ready', 'started'];
/** Ids per GET /jobs?ids=… (kept well under URL length limits: UUIDs are 36 characters). */
const IDS_PER_CALL = 50;
/** IonQ's clients retry 520–529 (qiskit-ionq, ionq-core-python), and 429/5xx with Retry-After. */
const IONQ_RETRIED = new Set([429, 500, 502, 503, 504, 520, 521, 522, 523, 524, 525, 526, 527, 528, 529]);

export function ionqJobStatus(raw: string): JobStatus {
  switch (raw.toLowerCase()) {
    case 'submitted':
      return 'validating';
    case 'ready':
      return 'queued';
    case 'started':
    case 'running':
      return 'running';
    case 'completed':
      return 'completed';
    case 'failed':
      return 'failed';
    case 'canceled':
    case 'cancelled':
      return 'cancelled';
    default:
      return 'unknown';
  }
}

interface IonqBackend {
  backend: string;
  status?: string;
  degraded?: boolean;
  qubits?: number;
  average_queue_time?: number;
  last_updated?: string | number;
  characterization_id?: string;
  location?: string;
}

interface IonqJob {
  id: string;
  status?: string;
  backend?: string;
  target?: string;
  name?: string;
  type?: string;
  submitter_id?: string;
  submitted_at?: string;
  request?: number;
  started_at?: string;
  start?: number;
  completed_at?: string;
  response?: number;
  shots?: number;
  session_id?: string;
  failure?: { message?: string; error?: string; code?: string } | null;
  stats?: { billed_quantum_compute_time_us?: number };
  execution_duration_ms?: number;
  /** v0.3: execution time in ms. */
  execution_time?: number;
}

/**
 * IonQ Quantum Cloud API v0.4 (v0.3 field names are read too). The job list has no
 * documented order, so the sync never stops at "the first older job": open jobs are re-read by
 * id, and new ones are paged until a page brings nothing unknown (and the whole list is read
 * periodically, see the sync).
 */
export class IonqClient implements ProviderClient {
  readonly provider = 'ionq';
  readonly name = 'ionq';
  readonly region = 'us';
  readonly readsBackends = true;
  readonly baseUrl: string;
  readonly fullReadEveryMs: number;
  private readonly timeoutMs: number;

  constructor(private readonly o: IonqOptions) {
    this.fullReadEveryMs = o.fullSyncEveryMs ?? 3_600_000;
    this.baseUrl = (o.apiUrl ?? 'https://api.ionq.co/v0.4').replace(/\/$/, '');
    this.timeoutMs = o.timeoutMs ?? 20_000;
  }

  private get<T>(path: string, signal?: AbortSignal): Promise<T> {
    return requestJson<T>(
      `${this.baseUrl}${path}`,
      { headers: { Authorization: `apiKey ${this.o.apiKey}`, Accept: 'application/json' } },
      { provider: 'ionq', timeoutMs: this.timeoutMs, retried: IONQ_RETRIED, fetch: this.o.fetch, signal },
    );
  }

  async backends(signal?: AbortSignal): Promise<BackendSnapshot[]> {
    const list = await this.get<IonqBackend[]>('/backends', signal);
    if (!Array.isArray(list)) throw new ProviderError('ionq', 200, 'backends answer is not an array');
    const unit = (this.o.queueTimeUnitMs ?? 1) / 1000;
    return list
      .filter((b) => typeof b?.backend === 'string')
      .map((b) => {
        const wait = num(b.average_queue_time);
        return {
          name: b.backend,
          status: b.status === 'available' ? 'online' : 'offline',
          raw_status: b.status ?? 'unknown',
          status_reason: b.degraded ? 'degraded' : null,
          is_simulator: b.backend.startsWith('simulator'),
          qubits: num(b.qubits),
          queue_length: null,
          wait_seconds_avg: wait === null ? null : wait * unit,
          wait_seconds_p95: null,
          processor: null,
          degraded: b.degraded === true,
          // The device's site ("College Park, MD, USA"); IonQ has one API region.
          region: str(b.location) ?? this.region,
          details: {
            last_updated: isoTime(b.last_updated),
            characterization_id: b.characterization_id ?? null,
            location: str(b.location),
          },
        } satisfies BackendSnapshot;
      });
  }

  private async page(
    query: URLSearchParams,
    signal?: AbortSignal,
  ): Promise<{ jobs: IonqJob[]; next: string | null }> {
    const page: { jobs?: IonqJob[]; next?: string | null } = await this.get(`/jobs?${query}`, signal);
    if (!Array.isArray(page?.jobs)) throw new ProviderError('ionq', 200, 'jobs answer has no jobs array');
    return { jobs: page.jobs.filter((j) => typeof j?.id === 'string'), next: page.next ?? null };
  }

  /**
   * Walks a listing by its `next` cursors. `onPage` says whether to go on; the walk also ends
   * at a page with no job it has not seen, at a cursor seen before, and after MAX_PAGES, so a
   * list that changes under it (or never ends) cannot hold the sync.
   */
  private async walk(
    base: Record<string, string>,
    found: Map<string, JobSnapshot>,
    signal: AbortSignal | undefined,
    onPage: (jobs: IonqJob[]) => Promise<boolean> = async () => true,
  ): Promise<void> {
    let next: string | null = null;
    const cursors = new Set<string>();
    const walked = new Set<string>();
    for (let n = 0; n < MAX_PAGES; n++) {
      const q = new URLSearchParams({ ...base, limit: String(PAGE) });
      if (next) q.set('next', next);
      const page = await this.page(q, signal);
      let fresh = 0;
      for (const j of page.jobs) {
        if (!walked.has(j.id)) fresh++;
        walked.add(j.id);
        found.set(j.id, this.job(j));
      }
      const goOn = await onPage(page.jobs);
      next = page.next;
      if (!goOn || !next || cursors.has(next) || page.jobs.length === 0 || fresh === 0) return;
      cursors.add(next);
    }
    throw new ProviderError('ionq', 200, `the job list did not end after ${MAX_PAGES} pages`);
  }

  /**
   * Open jobs wherever they sit: by status (the v0.4 `status` filter), and the recorded open
   * ones by id (`ids`, an array: repeated keys, as IonQ's own client sends it). Then new jobs:
   * the list has no documented order, so it is paged until a page holds nothing unknown (every
   * page on a periodic full read). A job that was submitted and finished between two syncs and
   * sits deep in the list is found by the next full read (IONQ_FULL_SYNC_EVERY).
   */
  async jobs(ctx: JobsContext): Promise<JobSnapshot[]> {
    const { signal } = ctx;
    const found = new Map<string, JobSnapshot>();
    for (let i = 0; i < ctx.openIds.length; i += IDS_PER_CALL) {
      const ids = ctx.openIds.slice(i, i + IDS_PER_CALL);
      const q = new URLSearchParams({ limit: String(ids.length) });
      for (const id of ids) q.append('ids', id);
      const { jobs } = await this.page(q, signal);
      // Only what was asked for: a server that ignored the filter must not pass for an answer.
      const asked = new Set(ids);
      for (const j of jobs) if (asked.has(j.id)) found.set(j.id, this.job(j));
    }
    for (const status of OPEN_STATUSES) await this.walk({ status }, found, signal);
    const full = ctx.since === undefined;
    await this.walk({}, found, signal, async (jobs) => {
      if (full) return true;
      const known = await ctx.known(jobs.map((j) => j.id));
      return jobs.some((j) => !known.has(j.id));
    });
    return [...found.values()];
  }

  private job(j: IonqJob): JobSnapshot {
    const raw = j.status ?? 'unknown';
    const status = ionqJobStatus(raw);
    const billedUs = nonNegative(j.stats?.billed_quantum_compute_time_us);
    const executionMs = nonNegative(j.execution_duration_ms) ?? nonNegative(j.execution_time);
    return {
      id: j.id,
      backend: str(j.backend) ?? str(j.target),
      status,
      raw_status: raw,
      program: str(j.type) ?? str(j.name),
      user_id: str(j.submitter_id),
      created_at: isoTime(j.submitted_at ?? j.request) ?? new Date((this.o.now ?? Date.now)()).toISOString(),
      started_at: isoTime(j.started_at ?? j.start),
      ended_at: isoTime(j.completed_at ?? j.response),
      // Billed time when IonQ states it; else the execution time (v0.4 ms, v0.3 execution_time ms).
      quantum_seconds: billedUs !== null ? billedUs / 1e6 : executionMs ? executionMs / 1000 : null,
      // IonQ bills with the job: what a finished job says is what it costs.
      billing_final: TERMINAL.has(status),
      shots: num(j.shots),
      tags: [],
      failure_reason: j.failure ? (j.failure.message ?? j.failure.error ?? j.failure.code ?? 'failed') : null,
      session_id: str(j.session_id),
    };
  }

  /**
   * GET /organizations/{id}/usage for the current UTC month (QPU time in µs), when an
   * organization is configured; IonQ has no per-key usage endpoint otherwise.
   */
  async usage(signal?: AbortSignal): Promise<UsageSnapshot | null> {
    if (!this.o.organizationId) return null;
    const now = new Date((this.o.now ?? Date.now)());
    const from = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
    const to = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1));
    const day = (d: Date) => d.toISOString().slice(0, 10);
    const q = new URLSearchParams({
      start_date: day(from),
      end_date: day(to),
      group_by: 'project',
      modality: 'monthly',
    });
    const u = await this.get<{ time_us_total?: number; usage_from?: string; usage_to?: string }>(
      `/organizations/${encodeURIComponent(this.o.organizationId)}/usage?${q}`,
      signal,
    );
    const us = nonNegative(u?.time_us_total);
    if (us === null) return null;
    return {
      consumed_seconds: us / 1e6,
      limit_seconds: null,
      period_start: isoTime(u.usage_from) ?? from.toISOString(),
      period_end: isoTime(u.usage_to) ?? to.toISOString(),
    };
  }
}
