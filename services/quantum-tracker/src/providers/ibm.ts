import { isoTime, nonNegative, num, ProviderError, requestJson, str } from './http';
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
/** Pages one listing may take at most (a million jobs): a provider that never ends its list does not hold a sync. */
const MAX_PAGES = 5000;
/** Open jobs re-read by id per sync when neither the window nor the pending list had them. */
const OPEN_REREADS_PER_SYNC = 200;
/** An IAM token is used for at least this long, whatever its stated lifetime. */
const MIN_TOKEN_MS = 60_000;
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

/**
 * Billed seconds from a usage object, and whether IBM says they are final: only `status:
 * complete` is, as the official client reads it (base_runtime_job.py: no status is pending).
 * Negative seconds are no seconds.
 */
function billing(u: IbmJob['usage'] | undefined): { seconds: number | null; final: boolean } {
  const seconds = nonNegative(u?.qpu_charge_time_seconds) ?? nonNegative(u?.seconds);
  return { seconds, final: u?.status === 'complete' };
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
  private renewing: Promise<string> | undefined;
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

  /** The bearer token; concurrent callers share one exchange at IAM. */
  private bearer(force = false): Promise<string> {
    if (!force && this.token && this.now() < this.token.renewAt) return Promise.resolve(this.token.value);
    this.renewing ??= this.exchange().finally(() => {
      this.renewing = undefined;
    });
    return this.renewing;
  }

  private async exchange(): Promise<string> {
    const body = new URLSearchParams({
      grant_type: 'urn:ibm:params:oauth:grant-type:apikey',
      apikey: this.o.apiKey,
    });
    const t = await requestJson<{ access_token?: string; expires_in?: number; expiration?: number }>(
      `${this.iamUrl}/identity/token`,
      {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
        body,
      },
      this.http(),
    );
    if (!t?.access_token) throw new ProviderError('ibm', 0, 'IAM answered without an access_token');
    // `expiration` (epoch seconds) is what IAM's own clients trust; else expires_in; else an hour.
    const expiration = num(t.expiration);
    const statedMs =
      expiration !== null ? expiration * 1000 - this.now() : (num(t.expires_in) ?? 3600) * 1000;
    this.token = { value: t.access_token, renewAt: this.now() + Math.max(statedMs * 0.8, MIN_TOKEN_MS) };
    return t.access_token;
  }

  private async get<T>(path: string, signal?: AbortSignal): Promise<T> {
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
        { ...this.http(), signal },
      );
    try {
      return await call(false);
    } catch (err) {
      // An expired or revoked token: get a fresh one once, then give up.
      if (err instanceof ProviderError && err.status === 401) return call(true);
      throw err;
    }
  }

  async backends(signal?: AbortSignal): Promise<BackendSnapshot[]> {
    const res = await this.get<{ devices?: IbmDevice[] }>('/v1/backends?fields=wait_time_seconds', signal);
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
   * The account's jobs that changed: those created since the window opened, those IBM lists as
   * pending (queued or running) wherever they are, and recorded open jobs neither list had
   * (read by id, a bounded number per sync). The spec: the list holds "the quantum program jobs
   * you have run" in the instance, hence one account per member key.
   */
  async jobs({ since, openIds, signal }: JobsContext): Promise<JobSnapshot[]> {
    const found = new Map<string, JobSnapshot>();
    await this.list(since, false, found, signal);
    if (since !== undefined) {
      await this.list(undefined, true, found, signal);
      const missing = openIds.filter((id) => !found.has(id)).slice(0, OPEN_REREADS_PER_SYNC);
      for (const id of missing) {
        const j = await this.get<IbmJob>(
          `/v1/jobs/${encodeURIComponent(id)}?exclude_params=true`,
          signal,
        ).catch((err: unknown) => {
          if (err instanceof ProviderError && (err.status === 404 || err.status === 403)) return null;
          throw err;
        });
        if (j === null) found.set(id, this.gone(id));
        else if (typeof j?.id === 'string') found.set(j.id, this.job(j));
      }
    }
    return [...found.values()];
  }

  /**
   * GET /v1/jobs oldest first (sort=ASC) from `created_after`, paged by keyset: each page starts
   * at the newest `created` seen so far (inclusive, as the spec says "greater than or equal
   * to"), skipping the jobs already seen at exactly that time. Jobs submitted or deleted while
   * the list is read cannot shift a later page onto the wrong jobs, as offsets into a
   * newest-first list would; a job that comes twice counts once.
   */
  private async list(
    since: Date | undefined,
    pending: boolean,
    found: Map<string, JobSnapshot>,
    signal?: AbortSignal,
  ): Promise<void> {
    let from = since?.toISOString();
    let atFrom = 0;
    for (let page = 0; page < MAX_PAGES; page++) {
      const q = new URLSearchParams({ limit: String(PAGE), sort: 'ASC', exclude_params: 'true' });
      if (from) q.set('created_after', from);
      if (atFrom > 0) q.set('offset', String(atFrom));
      if (pending) q.set('pending', 'true');
      const res = await this.get<{ jobs?: IbmJob[]; count?: number }>(`/v1/jobs?${q}`, signal);
      if (!Array.isArray(res?.jobs)) throw new ProviderError('ibm', 200, 'jobs answer has no jobs array');
      let fresh = 0;
      for (const j of res.jobs) {
        if (typeof j?.id !== 'string') continue;
        if (!found.has(j.id)) fresh++;
        found.set(j.id, this.job(j));
      }
      const last = res.jobs.at(-1);
      const lastCreated = isoTime(last?.created);
      // A short page is the end; so is one that brings nothing new (a list that does not move on).
      if (res.jobs.length < PAGE || fresh === 0 || !lastCreated) return;
      const atLast = res.jobs.filter((j) => isoTime(j.created) === lastCreated).length;
      if (lastCreated === from) atFrom += atLast;
      else {
        from = lastCreated;
        atFrom = atLast;
      }
    }
    throw new ProviderError('ibm', 200, `the job list did not end after ${MAX_PAGES} pages`);
  }

  /** A recorded open job IBM no longer has (deleted, or no longer visible to this key). */
  private gone(id: string): JobSnapshot {
    return {
      id,
      backend: null,
      status: 'cancelled',
      raw_status: 'not found at IBM',
      program: null,
      user_id: null,
      created_at: new Date(this.now()).toISOString(),
      started_at: null,
      ended_at: null,
      quantum_seconds: null,
      billing_final: true,
      shots: null,
      tags: [],
      failure_reason: null,
      session_id: null,
    };
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

  /**
   * Start, end and final billing of each job, from GET /v1/jobs/{id}/metrics (a few at once).
   * One job's failure is that job's: it is reported as such and tried again later, never the
   * whole sync's. A job IBM does not have (404) or does not show this key (403, both in the
   * spec) has nothing more to say.
   */
  async details(ids: string[], signal?: AbortSignal): Promise<JobDetails[]> {
    const out: JobDetails[] = [];
    const queue = [...ids];
    const none = { started_at: null, ended_at: null, quantum_seconds: null };
    const worker = async () => {
      for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
        let m: IbmJobMetrics | null;
        try {
          m = await this.get<IbmJobMetrics>(`/v1/jobs/${encodeURIComponent(id)}/metrics`, signal);
        } catch (err) {
          if (signal?.aborted) throw err;
          if (err instanceof ProviderError && (err.status === 404 || err.status === 403)) m = null;
          else {
            out.push({ id, ...none, billing_final: false, error: (err as Error).message });
            continue;
          }
        }
        if (m === null) {
          out.push({ id, ...none, billing_final: true, gone: true });
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

  async usage(signal?: AbortSignal): Promise<UsageSnapshot | null> {
    const u = await this.get<{
      usage_consumed_seconds?: number;
      usage_limit_seconds?: number;
      usage_allocation_seconds?: number;
      usage_period?: { start_time?: string; end_time?: string };
    }>('/v1/instances/usage', signal);
    const consumed = nonNegative(u?.usage_consumed_seconds);
    if (consumed === null) return null;
    return {
      consumed_seconds: consumed,
      limit_seconds: num(u.usage_limit_seconds) ?? num(u.usage_allocation_seconds),
      period_start: isoTime(u.usage_period?.start_time),
      period_end: isoTime(u.usage_period?.end_time),
    };
  }
}
