/**
 * Test doubles of the IBM Quantum Platform (IAM + Qiskit Runtime REST API) and IonQ (v0.4),
 * built from the real shapes (qiskit-ibm-runtime's api/rest and runtime_job_v2.py, IBM's
 * OpenAPI; IonQ's v0.4 OpenAPI) and stricter than reality where our clients could go wrong:
 * - IBM is reached at the region's own host (the fake's `fetch` routes the real host names to
 *   this server and refuses other hosts, as DNS and IBM would); the API version header must be
 *   the one the official client sends; job objects have no times (only /metrics has them);
 *   usage stays `pending` after a job completed until the test flips it; `fields` is honoured;
 *   each API key lists only its owner's jobs; /v1/jobs refuses parameters it does not have
 *   and bad `sort`/`pending`/`created_after` values, can change between two pages (a job
 *   submitted meanwhile), and can leave `count` out (it is optional in the spec).
 * - IonQ lists jobs in no fixed order (shuffled on every call, with UUID `next` cursors),
 *   filters by `ids` (an array: repeated keys; a comma is part of an id) and by one `status`,
 *   refuses parameters it does not have, and can answer the 52x codes its clients retry.
 * Test code only.
 */
import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import express from 'express';
import { IBM_API_VERSION } from '../src/providers/ibm';

export interface FakeIbmJob {
  id: string;
  backend: string;
  status: string;
  created: string;
  user_id?: string;
  program?: string;
  qpu_seconds?: number;
  reason_code?: number;
  /** /metrics timestamps.running and .finished (ISO). */
  running?: string;
  finished?: string;
  /** usage.status: `pending` until IBM has counted the job. Default complete. */
  usage_status?: 'pending' | 'complete';
  /** The API key whose owner ran it (each key lists only its own jobs). Default the first key. */
  owner?: string;
}

export interface FakeIbmBackend {
  name: string;
  status: 'online' | 'paused' | 'offline';
  queue_length: number;
  is_simulator?: boolean;
  qubits?: number;
  wait?: number;
}

export interface Fault {
  status: number;
  retryAfter?: string;
  body?: string;
  /** How many calls fail before the fake answers normally again. */
  times: number;
}

/** A network error as undici's fetch raises it for a host that does not resolve. */
function unresolvable(host: string): TypeError {
  const cause = Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
  return new TypeError('fetch failed', { cause });
}

/** Routes requests for the given real host names to a local server, telling it which host was asked. */
function routingFetch(hosts: () => string[], port: () => number, seen: string[]): typeof fetch {
  return async (input, init) => {
    const u = new URL(input instanceof Request ? input.url : String(input));
    seen.push(u.host);
    if (!hosts().includes(u.host)) throw unresolvable(u.host);
    const headers = new Headers(init?.headers);
    headers.set('x-fake-host', u.host);
    return fetch(`http://127.0.0.1:${port()}${u.pathname}${u.search}`, { ...init, headers });
  };
}

interface IndexedJob {
  job: FakeIbmJob;
  at: number;
  pending: boolean;
}

export class FakeIbm {
  backends: FakeIbmBackend[] = [];
  jobs: FakeIbmJob[] = [];
  tokensIssued = 0;
  tokenTtlSeconds = 3600;
  calls: { host: string; path: string; query: Record<string, string> }[] = [];
  /** Every host a client tried, resolvable or not. */
  hostsTried: string[] = [];
  fault: Fault | undefined;
  /** Tokens the API refuses (as if expired or revoked). */
  revoked = new Set<string>();
  malformed = false;
  /** Each API answer waits this long (a slow provider). */
  delayMs = 0;
  /** Called before each /v1/jobs page is answered (a job submitted while the list is read). */
  beforePage: ((page: number) => void) | undefined;
  private pagesServed = 0;
  /** Leave `count` out of job lists (optional in the spec). */
  omitCount = false;
  /** A broken list: the same first page whatever the offset or created_after. */
  ignorePaging = false;
  /** /metrics answers this status for these jobs (a job IBM will not show, a broken record). */
  metricsFaults = new Map<string, number>();
  /** IAM's token lifetime, and whether it sends `expiration` too. */
  sendExpiration = true;
  readonly apiKey = 'ibm-key';
  /** More keys of members of the same instance. */
  readonly otherKeys = ['ibm-key-alice', 'ibm-key-bob'];
  private readonly tokenOwner = new Map<string, string>();
  readonly crn: string;
  server!: Server;
  url = '';

  constructor(
    readonly region = 'eu-de',
    readonly cname: 'bluemix' | 'staging' = 'bluemix',
  ) {
    this.crn = `crn:v1:${cname}:public:quantum-computing:${region}:a/acct:inst-1::`;
  }

  /** The API host of this instance's region (qiskit-ibm-runtime default_runtime_url_resolver). */
  get apiHost(): string {
    // Staging's API host comes from the URL a user gives (qiskit derives it from test.cloud.ibm.com).
    if (this.cname === 'staging') return 'quantum.test.cloud.ibm.com';
    return `${this.region === 'us-east' ? '' : `${this.region}.`}quantum.cloud.ibm.com`;
  }

  get iamHost(): string {
    return this.cname === 'staging' ? 'iam.test.cloud.ibm.com' : 'iam.cloud.ibm.com';
  }

  /** A fetch that reaches this fake at the real host names (anything else does not resolve). */
  readonly fetch: typeof fetch = routingFetch(
    () => [
      this.apiHost,
      this.iamHost,
      'quantum.cloud.ibm.com',
      'eu-de.quantum.cloud.ibm.com',
      'iam.cloud.ibm.com',
    ],
    () => (this.server.address() as { port: number }).port,
    this.hostsTried,
  );

  private byCreated = {
    jobs: [] as FakeIbmJob[],
    seen: [] as FakeIbmJob[],
    fields: [] as string[],
    byOwner: new Map<string, IndexedJob[]>(),
  };

  /**
   * Each owner's jobs sorted by creation time, kept between pages while no job was added,
   * removed or changed in created, status or owner (tests edit `jobs` in place): a benchmark
   * measures the tracker, not this fake re-sorting 100k jobs per page. Checking is one pass.
   */
  private jobsOf(owner: string): IndexedJob[] {
    const c = this.byCreated;
    let unchanged = c.jobs === this.jobs && c.seen.length === this.jobs.length;
    for (let i = 0; unchanged && i < this.jobs.length; i++) {
      const j = this.jobs[i]!;
      unchanged =
        c.seen[i] === j &&
        c.fields[3 * i] === j.created &&
        c.fields[3 * i + 1] === j.status &&
        c.fields[3 * i + 2] === (j.owner ?? '');
    }
    if (!unchanged) {
      const byOwner = new Map<string, IndexedJob[]>();
      for (const job of this.jobs) {
        const who = job.owner ?? this.apiKey;
        const entry = {
          job,
          at: Date.parse(job.created),
          pending: ['queued', 'running'].includes(job.status.toLowerCase()),
        };
        const list = byOwner.get(who);
        if (list) list.push(entry);
        else byOwner.set(who, [entry]);
      }
      for (const list of byOwner.values()) list.sort((x, y) => x.at - y.at);
      this.byCreated = {
        jobs: this.jobs,
        seen: [...this.jobs],
        fields: this.jobs.flatMap((j) => [j.created, j.status, j.owner ?? '']),
        byOwner,
      };
    }
    return this.byCreated.byOwner.get(owner) ?? [];
  }

  async start(): Promise<this> {
    const app = express();
    app.post('/identity/token', express.urlencoded({ extended: false }), (req, res) => {
      const host = req.headers['x-fake-host'];
      if (host !== undefined && host !== this.iamHost) {
        res
          .status(400)
          .json({ errorCode: 'BXNIM0415E', errorMessage: 'Provided API key could not be found.' });
        return;
      }
      const key = String(req.body.apikey ?? '');
      if (
        req.body.grant_type !== 'urn:ibm:params:oauth:grant-type:apikey' ||
        (key !== this.apiKey && !this.otherKeys.includes(key))
      ) {
        res
          .status(400)
          .json({ errorCode: 'BXNIM0415E', errorMessage: 'Provided API key could not be found.' });
        return;
      }
      this.tokensIssued++;
      const token = `tok-${this.tokensIssued}`;
      this.tokenOwner.set(token, key);
      res.json({
        access_token: token,
        refresh_token: 'not_supported',
        token_type: 'Bearer',
        expires_in: this.tokenTtlSeconds,
        ...(this.sendExpiration ? { expiration: Math.floor(Date.now() / 1000) + this.tokenTtlSeconds } : {}),
      });
    });
    app.use('/api/v1', (req, res, next) => {
      const host = String(req.headers['x-fake-host'] ?? this.apiHost);
      this.calls.push({ host, path: req.path, query: req.query as Record<string, string> });
      // Another region's host does not know this instance.
      if (host !== this.apiHost) {
        res.status(404).json({ trace: 't', errors: [{ code: 'not_found', message: 'Instance not found' }] });
        return;
      }
      const token = (req.headers.authorization ?? '').replace(/^Bearer /, '');
      if (!this.tokenOwner.has(token) || this.revoked.has(token)) {
        res.status(401).json({ trace: 't', errors: [{ code: 'unauthorized', message: 'Invalid token' }] });
        return;
      }
      if (req.headers['service-crn'] !== this.crn) {
        res
          .status(403)
          .json({ trace: 't', errors: [{ code: 'forbidden', message: 'No access to instance' }] });
        return;
      }
      if (req.headers['ibm-api-version'] !== IBM_API_VERSION) {
        res
          .status(400)
          .json({ trace: 't', errors: [{ code: 'bad_request', message: 'Unsupported IBM-API-Version' }] });
        return;
      }
      res.locals.owner = this.tokenOwner.get(token);
      if (this.fault && this.fault.times > 0) {
        this.fault.times--;
        if (this.fault.retryAfter) res.setHeader('Retry-After', this.fault.retryAfter);
        res
          .status(this.fault.status)
          .type('json')
          .send(
            this.fault.body ??
              JSON.stringify({ trace: 't', errors: [{ code: 'x', message: `fault ${this.fault.status}` }] }),
          );
        return;
      }
      if (this.malformed) {
        res.type('json').send('{"devices": [');
        return;
      }
      if (this.delayMs > 0) setTimeout(next, this.delayMs);
      else next();
    });
    app.get('/api/v1/backends', (req, res) => {
      // wait_time_seconds only when asked for with fields=wait_time_seconds.
      const withWait = String(req.query.fields ?? '')
        .split(',')
        .includes('wait_time_seconds');
      res.json({
        devices: this.backends.map((b) => ({
          name: b.name,
          status: { name: b.status, reason: b.status === 'online' ? undefined : 'maintenance' },
          is_simulator: b.is_simulator ?? false,
          qubits: b.qubits ?? 156,
          clops: { type: 'hardware', value: 250000 },
          processor_type: { family: 'Heron', revision: '2', segment: null },
          queue_length: b.queue_length,
          ...(withWait
            ? {
                wait_time_seconds:
                  b.wait === undefined ? null : { average: b.wait, p50: b.wait, p95: b.wait * 3 },
              }
            : {}),
        })),
      });
    });
    const usageOf = (j: FakeIbmJob) =>
      j.qpu_seconds === undefined
        ? { qpu_charge_time_seconds: 0, status: j.usage_status ?? 'complete' }
        : {
            // IBM reports 0 while it is still counting (qiskit: usage() is 0 until complete).
            qpu_charge_time_seconds: j.usage_status === 'pending' ? 0 : j.qpu_seconds,
            status: j.usage_status ?? 'complete',
          };
    const jobObject = (j: FakeIbmJob) => ({
      id: j.id,
      backend: j.backend,
      state: { status: j.status, reason_code: j.reason_code },
      status: j.status,
      program: { id: j.program ?? 'sampler' },
      created: j.created,
      cost: 600,
      user_id: j.user_id ?? 'IBMid-1',
      tags: ['exp'],
      // No start or end time here: the job object has none (2026-04-15).
      usage: usageOf(j),
    });
    const badRequest = (res: express.Response, message: string) =>
      res.status(400).json({ trace: 't', errors: [{ code: 'bad_request', message }] });
    const JOB_QUERY = new Set([
      'limit',
      'offset',
      'sort',
      'pending',
      'created_after',
      'created_before',
      'exclude_params',
      'backend',
      'program',
      'tags',
      'session_id',
    ]);
    app.get('/api/v1/jobs', (req, res) => {
      const q = req.query as Record<string, unknown>;
      const unknown = Object.keys(q).find((k) => !JOB_QUERY.has(k));
      if (unknown) return badRequest(res, `unknown parameter ${unknown}`);
      if (Object.values(q).some((v) => typeof v !== 'string')) return badRequest(res, 'repeated parameter');
      const limit = Number(q.limit ?? 200);
      if (!Number.isInteger(limit) || limit < 1 || limit > 200) return badRequest(res, 'limit must be 1-200');
      const offset = Number(q.offset ?? 0);
      if (!Number.isInteger(offset) || offset < 0) return badRequest(res, 'offset must be 0 or more');
      if (q.sort !== undefined && q.sort !== 'ASC' && q.sort !== 'DESC')
        return badRequest(res, 'sort is ASC or DESC');
      if (q.pending !== undefined && q.pending !== 'true' && q.pending !== 'false')
        return badRequest(res, 'pending is true or false');
      const after = q.created_after === undefined ? undefined : Date.parse(String(q.created_after));
      if (after !== undefined && Number.isNaN(after)) return badRequest(res, 'created_after is a date-time');
      this.beforePage?.(this.pagesServed++);
      const owner = res.locals.owner as string;
      const pending = q.pending === undefined ? undefined : q.pending === 'true';
      const sorted = this.jobsOf(owner);
      // Oldest first from created_after (binary search), or newest first down to it.
      let first = 0;
      if (after !== undefined) {
        let hi = sorted.length;
        while (first < hi) {
          const mid = (first + hi) >>> 1;
          if (sorted[mid]!.at < after) first = mid + 1;
          else hi = mid;
        }
      }
      const asc = q.sort === 'ASC';
      const at = (k: number) => sorted[asc ? first + k : sorted.length - 1 - k]!;
      let page: FakeIbmJob[];
      let count: number;
      if (pending === undefined) {
        count = sorted.length - first;
        page = [];
        for (let k = offset; k < Math.min(count, offset + limit); k++) page.push(at(k).job);
      } else {
        const matching: FakeIbmJob[] = [];
        for (let k = 0; k < sorted.length - first; k++)
          if (at(k).pending === pending) matching.push(at(k).job);
        count = matching.length;
        page = matching.slice(offset, offset + limit);
      }
      res.json({
        jobs: (this.ignorePaging ? this.jobs.slice(0, limit) : page).map(jobObject),
        ...(this.omitCount ? {} : { count }),
        limit,
        offset,
      });
    });
    app.get('/api/v1/jobs/:id', (req, res) => {
      const j = this.jobs.find(
        (x) => x.id === req.params.id && (x.owner ?? this.apiKey) === res.locals.owner,
      );
      if (!j) {
        res.status(404).json({ trace: 't', errors: [{ code: 'not_found', message: 'Job not found' }] });
        return;
      }
      res.json(jobObject(j));
    });
    app.get('/api/v1/jobs/:id/metrics', (req, res) => {
      const fault = this.metricsFaults.get(req.params.id);
      if (fault !== undefined) {
        res.status(fault).json({ trace: 't', errors: [{ code: 'x', message: `metrics ${fault}` }] });
        return;
      }
      const j = this.jobs.find(
        (x) => x.id === req.params.id && (x.owner ?? this.apiKey) === res.locals.owner,
      );
      if (!j) {
        res.status(404).json({ trace: 't', errors: [{ code: 'not_found', message: 'Job not found' }] });
        return;
      }
      res.json({
        timestamps: { created: j.created, running: j.running ?? null, finished: j.finished ?? null },
        bss: { seconds: j.qpu_seconds ?? 0 },
        usage: usageOf(j),
        executions: 1,
        num_circuits: 1,
        qiskit_version: 'qiskit-ibm-runtime-0.45.0',
      });
    });
    app.get('/api/v1/instances/usage', (_req, res) => {
      res.json({
        instance_id: this.crn,
        plan_id: 'open',
        usage_consumed_seconds: 120,
        usage_limit_seconds: 600,
        usage_period: { start_time: '2026-11-01T00:00:00Z', end_time: '2026-12-01T00:00:00Z' },
      });
    });
    await new Promise<void>((resolve) => {
      this.server = app.listen(0, '127.0.0.1', () => resolve());
    });
    const addr = this.server.address() as { port: number };
    this.url = `http://127.0.0.1:${addr.port}`;
    return this;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      // A client in a deleted network namespace never closes its socket.
      this.server.closeAllConnections();
    });
  }
}

export interface FakeIonqJob {
  id: string;
  status: string;
  backend: string;
  submitted_at: string;
  started_at?: string;
  completed_at?: string;
  billed_us?: number;
  /** A v0.3-shaped record: execution_time (ms) instead of v0.4's fields. */
  v03_execution_ms?: number;
  failure?: { code: string; message: string };
}

/** A deterministic shuffle (mulberry32), so a failure reproduces. */
function shuffled<T>(items: T[], seed: number): T[] {
  const out = [...items];
  let s = seed >>> 0;
  const rand = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  for (let i = out.length - 1; i > 0; i--) {
    const k = Math.floor(rand() * (i + 1));
    [out[i], out[k]] = [out[k]!, out[i]!];
  }
  return out;
}

export class FakeIonq {
  backends: {
    backend: string;
    status: 'available' | 'unavailable' | 'retired';
    qubits: number;
    average_queue_time: number;
    degraded?: boolean;
    location?: string;
  }[] = [];
  jobs: FakeIonqJob[] = [];
  readonly apiKey = 'ionq-key';
  readonly organizationId = '71d164e6-6ebe-4126-8839-f1529bb01a00';
  /** QPU time the organization used this month, in µs. */
  usageUs = 1_566_154.3;
  /** List pages served (GET /jobs without ids). */
  pages = 0;
  /** GET /jobs?ids=… calls and the ids they asked for. */
  idCalls: string[][] = [];
  /** GET /jobs?status=… calls. */
  statusCalls: string[] = [];
  /** Varies the shuffles (a test may run under many seeds). */
  seed = 0;
  /** A broken cursor: always a new `next`, always the same first page. */
  endlessCursor = false;
  usageQueries: Record<string, string>[] = [];
  /** Jobs come in a new order on every call: the list has no documented order. */
  shuffle = true;
  /** Each API answer waits this long (a slow provider). */
  delayMs = 0;
  private calls = 0;
  /** A list walk is a snapshot of the order, as a cursor would see it. */
  private readonly walks = new Map<string, { order: FakeIonqJob[]; start: number }>();
  fault: Fault | undefined;
  server!: Server;
  url = '';

  /** `host`: where it listens (a test of hosts in network namespaces gives the bridge's address). */
  async start(host = '127.0.0.1'): Promise<this> {
    const app = express();
    app.use((_req, _res, next) => {
      if (this.delayMs > 0) setTimeout(next, this.delayMs);
      else next();
    });
    app.get('/v0.4/backends', (_req, res) => {
      // Needs no key (the spec: security []).
      res.json(
        this.backends.map((b) => ({
          ...b,
          degraded: b.degraded ?? false,
          last_updated: '2026-11-20T00:00:00Z',
        })),
      );
    });
    app.use((req, res, next) => {
      if (req.headers.authorization !== `apiKey ${this.apiKey}`) {
        res.status(401).json({ error: 'Unauthorized', message: 'Invalid key', statusCode: 401 });
        return;
      }
      if (this.fault && this.fault.times > 0) {
        this.fault.times--;
        if (this.fault.retryAfter) res.setHeader('Retry-After', this.fault.retryAfter);
        res.status(this.fault.status).type('text/html').send('<html>origin error</html>');
        return;
      }
      next();
    });
    const present = (j: FakeIonqJob) =>
      j.v03_execution_ms !== undefined
        ? {
            id: j.id,
            status: j.status,
            target: j.backend,
            name: 'v0.3 job',
            request: Math.floor(Date.parse(j.submitted_at) / 1000),
            start: j.started_at ? Math.floor(Date.parse(j.started_at) / 1000) : undefined,
            response: j.completed_at ? Math.floor(Date.parse(j.completed_at) / 1000) : undefined,
            execution_time: j.v03_execution_ms,
          }
        : {
            id: j.id,
            status: j.status,
            type: 'ionq.circuit.v1',
            backend: j.backend,
            submitter_id: 'user-a',
            submitted_at: j.submitted_at,
            started_at: j.started_at ?? null,
            completed_at: j.completed_at ?? null,
            shots: 1000,
            failure: j.failure ?? null,
            stats: j.billed_us === undefined ? undefined : { billed_quantum_compute_time_us: j.billed_us },
          };
    const IONQ_JOB_QUERY = new Set([
      'ids',
      'parent_job_id',
      'status',
      'target',
      'session_id',
      'submitter_id',
      'limit',
      'next',
    ]);
    const IONQ_STATUSES = new Set(['submitted', 'ready', 'started', 'canceled', 'completed', 'failed']);
    app.get('/v0.4/jobs', (req, res) => {
      const bad = (message: string) =>
        res.status(400).json({ error: 'Bad Request', message, statusCode: 400 });
      const unknown = Object.keys(req.query).find((k) => !IONQ_JOB_QUERY.has(k));
      if (unknown) return bad(`unknown parameter ${unknown}`);
      const limit = Number(req.query.limit ?? 100);
      if (!Number.isInteger(limit) || limit < 1 || limit > 100) return bad('limit must be 1-100');
      if (req.query.ids !== undefined) {
        // An array parameter: ids=a&ids=b. A comma is part of an id, as the spec types it.
        const ids = ([] as unknown[]).concat(req.query.ids).map(String);
        this.idCalls.push(ids);
        res.json({ jobs: this.jobs.filter((j) => ids.includes(j.id)).map(present), next: null });
        return;
      }
      const status = req.query.status === undefined ? undefined : String(req.query.status);
      if (status !== undefined && !IONQ_STATUSES.has(status)) return bad('status is one JobStatus');
      if (status !== undefined) this.statusCalls.push(status);
      if (this.endlessCursor) {
        this.pages++;
        res.json({ jobs: this.jobs.slice(0, limit).map(present), next: randomUUID() });
        return;
      }
      let walk: { order: FakeIonqJob[]; start: number };
      if (req.query.next !== undefined) {
        const w = this.walks.get(String(req.query.next));
        if (!w) {
          res.status(400).json({ error: 'Bad Request', message: 'unknown cursor', statusCode: 400 });
          return;
        }
        walk = w;
      } else {
        const listed = status === undefined ? this.jobs : this.jobs.filter((j) => j.status === status);
        walk = { order: this.shuffle ? shuffled(listed, ++this.calls + this.seed) : [...listed], start: 0 };
      }
      this.pages++;
      const page = walk.order.slice(walk.start, walk.start + limit);
      let next: string | null = null;
      if (walk.start + limit < walk.order.length) {
        next = randomUUID();
        this.walks.set(next, { order: walk.order, start: walk.start + limit });
      }
      res.json({ jobs: page.map(present), next });
    });
    app.get('/v0.4/organizations/:org/usage', (req, res) => {
      this.usageQueries.push(req.query as Record<string, string>);
      const q = req.query as Record<string, string>;
      if (req.params.org !== this.organizationId) {
        res.status(404).json({ error: 'Not Found', message: 'no such organization', statusCode: 404 });
        return;
      }
      if (!q.start_date || !q.end_date || !q.group_by || !q.modality) {
        res.status(400).json({ error: 'Bad Request', message: 'missing parameters', statusCode: 400 });
        return;
      }
      res.json({
        organization: this.organizationId,
        group_type: q.group_by,
        modality: q.modality,
        time_us_total: this.usageUs,
        amount_total: 151.31,
        usage_unit: 'USD',
        job_count: this.jobs.length,
        usage_from: `${q.start_date}T00:00:00Z`,
        usage_to: `${q.end_date}T00:00:00Z`,
        usage_data: [],
      });
    });
    await new Promise<void>((resolve) => {
      this.server = app.listen(0, host, () => resolve());
    });
    const addr = this.server.address() as { port: number };
    this.url = `http://${host}:${addr.port}/v0.4`;
    return this;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      // A client in a deleted network namespace never closes its socket.
      this.server.closeAllConnections();
    });
  }
}
