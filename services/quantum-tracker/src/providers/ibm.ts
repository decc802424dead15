import { isoTime, num, ProviderError, requestJson, str } from './http';
import type {
  BackendSnapshot,
  BackendStatus,
  JobDetails,
  JobSnapshot,
  JobStatus,
  JobsContext,
  ProviderClient,
  UsageSnapshot,
} from './types';

export interface IbmOptions {
  apiKey: string;
  /** Sync account: `ibm`, or `ibm:<label>` for a further key of the same instance. */
  account?: string;
  /** Instance CRN, sent as Service-CRN; its 6th field is the region. */
  instance: string;
  /** The API base, e.g. https://eu-de.quantum.cloud.ibm.com/api (config derives it from the CRN). */
  apiUrl: string;
  /** e.g. https://iam.cloud.ibm.com */
  iamUrl: string;
  /** Read backends with this account (one account per instance does). Default true. */
  readsBackends?: boolean;
  timeoutMs?: number;
  now?: () => number;
  fetch?: typeof fetch;
}

/**
 * The Qiskit Runtime REST API version this client speaks, in one place: the version
 * qiskit-ibm-runtime pins (api/rest/base.py), whose job objects carry
 * `usage: {qpu_charge_time_seconds, status: pending|complete}`.
 */
export const IBM_API_VERSION = '2026-04-15';
const PAGE = 200;
/** What qiskit-ibm-runtime retries (api/session.py STATUS_FORCELIST), and 429 with Retry-After. */
const IBM_RETRIED = new Set([429, 500, 502, 503, 504, 520, 521, 522, 524]);
/** /metrics calls at once when re-reading jobs. */
const DETAIL_CONCURRENCY = 4;

/** IBM job states (case-insensitive) to the tracker's; reference §4. */
export function ibmJobStatus(raw: string, reasonCode?: number | null): JobStatus {
  const s = raw.toLowerCase();
  if (s === 'queued') return 'queued';
  if (s === 'running') return 'running';
  if (s === 'completed') return 'completed';
  if (s === 'failed' || s.startsWith('cancelled - ')) return 'failed';
  if (s === 'cancelled') return reasonCode === 1305 ? 'failed' : 'cancelled';
  return 'unknown';
}

function ibmBackendStatus(raw: string): BackendStatus {
  const s = raw.toLowerCase();
  return s === 'online' ? 'online' : s === 'paused' ? 'paused' : 'offline';
}

/** The region in the instance CRN (crn:v1:bluemix:public:quantum-computing:<region>:…). */
export function regionOfCrn(crn: string): string | null {
  return crn.split(':')[5] || null;
}

interface IbmDevice {
  name: string;
  status?: { name?: string; reason?: string };
  is_simulator?: boolean;
  qubits?: number | null;
  queue_length?: number;
  processor_type?: { family?: string; revision?: string } | null;
  clops?: { value?: number } | null;
  performance_metrics?: unknown;
  wait_time_seconds?: { average?: number; p50?: number; p95?: number } | null;
}

interface IbmJob {
  id: string;
  backend?: string;
  state?: { status?: string; reason?: string; reason_code?: number; reasonCode?: number };
  status?: string;
  program?: { id?: string };
  created: string;
  user_id?: string;
  tags?: string[];
  session_id?: string;
  /** 2026-04-15: {qpu_charge_time_seconds, status}; older versions {seconds}. */
  usage?: { qpu_charge_time_seconds?: number; seconds?: number; status?: string };
}

/** GET /v1/jobs/{id}/metrics: the only place with a job's start and end (the job object has none). */
interface IbmJobMetrics {
  timestamps?: { created?: string | null; running?: string | null; finished?: string | null };
  usage?: { qpu_charge_time_seconds?: number; seconds?: number; status?: string };
}

/** Billed seconds from a usage object, and whether IBM says they are final. */
function billing(u: IbmJob['usage'] | undefined): { seconds: number | null; final: boolean } {
  const seconds = num(u?.qpu_charge_time_seconds) ?? num(u?.seconds);
  // Older API versions have no status: their number is all there is.
  const final = u?.status === undefined ? seconds !== null : u.status === 'complete';
  return { seconds, final };
}

/**
 * IBM Quantum Platform (Qiskit Runtime REST API). The API key is exchanged at IAM for a bearer
 * token, renewed after 80 % of its life and once more on a 401.
 */
export class IbmQuantumClient implements ProviderClient {
  readonly provider = 'ibm';
  readonly name: string;
  readonly region: string | null;
  readonly readsBackends: boolean;
  readonly baseUrl: string;
  private token: { value: string; renewAt: number } | undefined;
  private readonly iamUrl: string;
  private readonly now: () => number;
  private readonly timeoutMs: number;

  constructor(private readonly o: IbmOptions) {
    this.name = o.account ?? 'ibm';
    this.baseUrl = o.apiUrl.replace(/\/$/, '');
    this.iamUrl = o.iamUrl.replace(/\/$/, '');
    this.now = o.now ?? Date.now;
    this.timeoutMs = o.timeoutMs ?? 20_000;
    this.region = regionOfCrn(o.instance);
    this.readsBackends = o.readsBackends ?? true;
  }

  private http() {
    return { provider: this.name, timeoutMs: this.timeoutMs, retried: IBM_RETRIED, fetch: this.o.fetch };
  }

  private async bearer(force = false): Promise<string> {
    if (!force && this.token && this.now() < this.token.renewAt) return this.token.value;
    const body = new URLSearchParams({
      grant_type: 'urn:ibm:params:oauth:grant-type:apikey',
      apikey: this.o.apiKey,
    });
    const t = await requestJson<{ access_token?: string; expires_in?: number }>(
      `${this.iamUrl}/identity/token`,
      {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
        body,
      },
      this.http(),
    );
    if (!t?.access_token) throw new ProviderError('ibm', 0, 'IAM answered without an access_token');
    const ttlMs = (num(t.expires_in) ?? 3600) * 1000;
    this.token = { value: t.access_token, renewAt: this.now() + ttlMs * 0.8 };
    return t.access_token;
  }

  private async get<T>(path: string): Promise<T> {
    const call = async (force: boolean) =>
      requestJson<T>(
        `${this.baseUrl}${path}`,
        {
          headers: {
            Authorization: `Bearer ${await this.bearer(force)}`,
            'Service-CRN': this.o.instance,
            'IBM-API-Version': IBM_API_VERSION,
            Accept: 'application/json',
          },
        },
        this.http(),
      );
    try {
      return await call(false);
    } catch (err) {
      // An expired or revoked token: get a fresh one once, then give up.
      if (err instanceof ProviderError && err.status === 401) return call(true);
      throw err;
    }
  }

  async backends(): Promise<BackendSnapshot[]> {
    const res = await this.get<{ devices?: IbmDevice[] }>('/v1/backends?fields=wait_time_seconds');
    if (!Array.isArray(res?.devices))
      throw new ProviderError('ibm', 200, 'backends answer has no devices array');
    return res.devices
      .filter((d) => typeof d?.name === 'string')
      .map((d) => ({
        name: d.name,
        status: ibmBackendStatus(d.status?.name ?? 'offline'),
        raw_status: d.status?.name ?? 'unknown',
        status_reason: str(d.status?.reason),
        is_simulator: d.is_simulator === true,
        qubits: num(d.qubits),
        queue_length: num(d.queue_length),
        wait_seconds_avg: num(d.wait_time_seconds?.average),
        wait_seconds_p95: num(d.wait_time_seconds?.p95),
        processor: d.processor_type?.family
          ? `${d.processor_type.family} r${d.processor_type.revision ?? '?'}`
          : null,
        degraded: false,
        region: this.region,
        details: { clops: d.clops?.value ?? null, performance_metrics: d.performance_metrics ?? null },
      }));
  }

  /**
   * GET /v1/jobs, newest first (`sort=DESC` is documented), from `created_after` on. The list
   * holds the key owner's jobs in the instance only (the spec: "the quantum program jobs you
   * have run"), hence one account per member key.
   */
  async jobs({ since }: JobsContext): Promise<JobSnapshot[]> {
    const out: JobSnapshot[] = [];
    for (let offset = 0; ; offset += PAGE) {
      const q = new URLSearchParams({ limit: String(PAGE), offset: String(offset), sort: 'DESC' });
      if (since) q.set('created_after', since.toISOString());
      const page = await this.get<{ jobs?: IbmJob[]; count?: number }>(`/v1/jobs?${q}`);
      if (!Array.isArray(page?.jobs)) throw new ProviderError('ibm', 200, 'jobs answer has no jobs array');
      for (const j of page.jobs) if (typeof j?.id === 'string') out.push(this.job(j));
      const total = num(page.count);
      if (page.jobs.length < PAGE || (total !== null && offset + page.jobs.length >= total)) break;
    }
    return out;
  }

  private job(j: IbmJob): JobSnapshot {
    const raw = j.state?.status ?? j.status ?? 'unknown';
    const reasonCode = j.state?.reason_code ?? j.state?.reasonCode ?? null;
    const status = ibmJobStatus(
      j.status?.toLowerCase().startsWith('cancelled - ') ? j.status : raw,
      reasonCode,
    );
    const bill = billing(j.usage);
    return {
      id: j.id,
      backend: str(j.backend),
      status,
      raw_status: j.status ?? raw,
      program: str(j.program?.id),
      user_id: str(j.user_id),
      created_at: isoTime(j.created) ?? new Date(this.now()).toISOString(),
      // Not in the job object: details() reads them from /metrics.
      started_at: null,
      ended_at: null,
      quantum_seconds: bill.seconds,
      billing_final: bill.final,
      shots: null,
      tags: Array.isArray(j.tags) ? j.tags.filter((t) => typeof t === 'string') : [],
      failure_reason: status === 'failed' ? (str(j.state?.reason) ?? raw) : null,
      session_id: str(j.session_id),
    };
  }

  /** Start, end and final billing of each job, from GET /v1/jobs/{id}/metrics (a few at once). */
  async details(ids: string[]): Promise<JobDetails[]> {
    const out: JobDetails[] = [];
    const queue = [...ids];
    const worker = async () => {
      for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
        const m = await this.get<IbmJobMetrics>(`/v1/jobs/${encodeURIComponent(id)}/metrics`).catch(
          (err: unknown) => {
            // A job deleted at IBM has nothing more to say: stop asking, keep what is recorded.
            if (err instanceof ProviderError && err.status === 404) return null;
            throw err;
          },
        );
        if (m === null) {
          out.push({ id, started_at: null, ended_at: null, quantum_seconds: null, billing_final: true });
          continue;
        }
        const bill = billing(m?.usage);
        out.push({
          id,
          started_at: isoTime(m?.timestamps?.running),
          ended_at: isoTime(m?.timestamps?.finished),
          quantum_seconds: bill.seconds,
          billing_final: bill.final,
        });
      }
    };
    await Promise.all(Array.from({ length: Math.min(DETAIL_CONCURRENCY, ids.length) }, worker));
    return out;
  }

  async usage(): Promise<UsageSnapshot | null> {
    const u = await this.get<{
      usage_consumed_seconds?: number;
      usage_limit_seconds?: number;
      usage_allocation_seconds?: number;
      usage_period?: { start_time?: string; end_time?: string };
    }>('/v1/instances/usage');
    const consumed = num(u?.usage_consumed_seconds);
    if (consumed === null) return null;
    return {
      consumed_seconds: consumed,
      limit_seconds: num(u.usage_limit_seconds) ?? num(u.usage_allocation_seconds),
      period_start: isoTime(u.usage_period?.start_time),
      period_end: isoTime(u.usage_period?.end_time),
    };
  }
}
