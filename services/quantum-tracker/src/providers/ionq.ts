import { isoTime, num, ProviderError, requestJson, str } from './http';
import type { BackendSnapshot, JobSnapshot, JobStatus, ProviderClient, UsageSnapshot } from './types';

export interface IonqOptions {
  apiKey: string;
  /** Default https://api.ionq.co/v0.4 */
  apiUrl?: string;
  timeoutMs?: number;
  /** IonQ does not document the unit of average_queue_time; the docs' example reads as ms. */
  queueTimeUnitMs?: number;
}

const PAGE = 100;

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
}

/** IonQ Quantum Cloud API (v0.4; v0.3 field names are read too). */
export class IonqClient implements ProviderClient {
  readonly name = 'ionq';
  readonly region = 'us';
  private readonly apiUrl: string;
  private readonly timeoutMs: number;

  constructor(private readonly o: IonqOptions) {
    this.apiUrl = (o.apiUrl ?? 'https://api.ionq.co/v0.4').replace(/\/$/, '');
    this.timeoutMs = o.timeoutMs ?? 20_000;
  }

  private get<T>(path: string): Promise<T> {
    return requestJson<T>(
      `${this.apiUrl}${path}`,
      { headers: { Authorization: `apiKey ${this.o.apiKey}`, Accept: 'application/json' } },
      { provider: 'ionq', timeoutMs: this.timeoutMs },
    );
  }

  async backends(): Promise<BackendSnapshot[]> {
    const list = await this.get<IonqBackend[]>('/backends');
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
          region: this.region,
          details: {
            last_updated: isoTime(b.last_updated),
            characterization_id: b.characterization_id ?? null,
          },
        } satisfies BackendSnapshot;
      });
  }

  async jobs(since: Date | undefined): Promise<JobSnapshot[]> {
    const out: JobSnapshot[] = [];
    let next: string | null = null;
    for (;;) {
      const q = new URLSearchParams({ limit: String(PAGE) });
      if (next) q.set('next', next);
      const page: { jobs?: IonqJob[]; next?: string | null } = await this.get(`/jobs?${q}`);
      if (!Array.isArray(page?.jobs)) throw new ProviderError('ionq', 200, 'jobs answer has no jobs array');
      let older = false;
      for (const j of page.jobs) {
        if (typeof j?.id !== 'string') continue;
        const job = this.job(j);
        // Newest first: once a page reaches jobs older than `since`, the rest are older still.
        if (since && Date.parse(job.created_at) < since.getTime()) {
          older = true;
          continue;
        }
        out.push(job);
      }
      next = page.next ?? null;
      if (!next || older || page.jobs.length === 0) break;
    }
    return out;
  }

  private job(j: IonqJob): JobSnapshot {
    const raw = j.status ?? 'unknown';
    const status = ionqJobStatus(raw);
    const billedUs = num(j.stats?.billed_quantum_compute_time_us);
    return {
      id: j.id,
      backend: str(j.backend) ?? str(j.target),
      status,
      raw_status: raw,
      program: str(j.type) ?? str(j.name),
      user_id: str(j.submitter_id),
      created_at: isoTime(j.submitted_at ?? j.request) ?? new Date().toISOString(),
      started_at: isoTime(j.started_at ?? j.start),
      ended_at: isoTime(j.completed_at ?? j.response),
      quantum_seconds:
        billedUs === null ? (num(j.execution_duration_ms) ?? 0) / 1000 || null : billedUs / 1e6,
      shots: num(j.shots),
      tags: [],
      failure_reason: j.failure ? (j.failure.message ?? j.failure.error ?? j.failure.code ?? 'failed') : null,
      session_id: str(j.session_id),
    };
  }

  /** IonQ's API has no usage endpoint; usage comes from billed job time. */
  async usage(): Promise<UsageSnapshot | null> {
    return null;
  }
}
