import { isoTime, num, ProviderError, requestJson, str } from './http';
import type {
  BackendSnapshot,
  BackendStatus,
  JobSnapshot,
  JobStatus,
  ProviderClient,
  UsageSnapshot,
} from './types';

export interface IbmOptions {
  apiKey: string;
  /** Instance CRN, sent as Service-CRN; its 6th field is the region. */
  instance: string;
  /** Default https://quantum.cloud.ibm.com/api (the region's host for other regions). */
  apiUrl?: string;
  /** Default https://iam.cloud.ibm.com */
  iamUrl?: string;
  timeoutMs?: number;
  now?: () => number;
}

export const IBM_API_VERSION = '2026-04-15';
const PAGE = 200;

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
  usage?: { qpu_charge_time_seconds?: number; seconds?: number };
  metrics?: unknown;
}

/**
 * IBM Quantum Platform (Qiskit Runtime REST API). The API key is exchanged at IAM for a bearer
 * token, renewed after 80 % of its life and once more on a 401.
 */
export class IbmQuantumClient implements ProviderClient {
  readonly name = 'ibm';
  readonly region: string | null;
  private token: { value: string; renewAt: number } | undefined;
  private readonly apiUrl: string;
  private readonly iamUrl: string;
  private readonly now: () => number;
  private readonly timeoutMs: number;

  constructor(private readonly o: IbmOptions) {
    this.apiUrl = (o.apiUrl ?? 'https://quantum.cloud.ibm.com/api').replace(/\/$/, '');
    this.iamUrl = (o.iamUrl ?? 'https://iam.cloud.ibm.com').replace(/\/$/, '');
    this.now = o.now ?? Date.now;
    this.timeoutMs = o.timeoutMs ?? 20_000;
    this.region = regionOfCrn(o.instance);
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
      { provider: 'ibm', timeoutMs: this.timeoutMs },
    );
    if (!t?.access_token) throw new ProviderError('ibm', 0, 'IAM answered without an access_token');
    const ttlMs = (num(t.expires_in) ?? 3600) * 1000;
    this.token = { value: t.access_token, renewAt: this.now() + ttlMs * 0.8 };
    return t.access_token;
  }

  private async get<T>(path: string): Promise<T> {
    const call = async (force: boolean) =>
      requestJson<T>(
        `${this.apiUrl}${path}`,
        {
          headers: {
            Authorization: `Bearer ${await this.bearer(force)}`,
            'Service-CRN': this.o.instance,
            'IBM-API-Version': IBM_API_VERSION,
            Accept: 'application/json',
          },
        },
        { provider: 'ibm', timeoutMs: this.timeoutMs },
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

  async jobs(since: Date | undefined): Promise<JobSnapshot[]> {
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
    return {
      id: j.id,
      backend: str(j.backend),
      status,
      raw_status: j.status ?? raw,
      program: str(j.program?.id),
      user_id: str(j.user_id),
      created_at: isoTime(j.created) ?? new Date(this.now()).toISOString(),
      started_at: null,
      ended_at: null,
      quantum_seconds: num(j.usage?.qpu_charge_time_seconds) ?? num(j.usage?.seconds),
      shots: null,
      tags: Array.isArray(j.tags) ? j.tags.filter((t) => typeof t === 'string') : [],
      failure_reason: status === 'failed' ? (str(j.state?.reason) ?? raw) : null,
      session_id: str(j.session_id),
    };
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
