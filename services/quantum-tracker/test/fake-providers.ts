/**
 * Test doubles of the IBM Quantum Platform (IAM + REST API) and IonQ, answering with the
 * documented response shapes (reference: quantum-providers.md). Test code only.
 */
import type { Server } from 'node:http';
import express from 'express';

export interface FakeIbmJob {
  id: string;
  backend: string;
  status: string;
  created: string;
  user_id?: string;
  program?: string;
  qpu_seconds?: number;
  reason_code?: number;
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

export class FakeIbm {
  backends: FakeIbmBackend[] = [];
  jobs: FakeIbmJob[] = [];
  tokensIssued = 0;
  tokenTtlSeconds = 3600;
  calls: { path: string; query: Record<string, string> }[] = [];
  fault: Fault | undefined;
  /** Tokens the API refuses (as if expired or revoked). */
  revoked = new Set<string>();
  malformed = false;
  readonly apiKey = 'ibm-key';
  readonly crn = 'crn:v1:bluemix:public:quantum-computing:eu-de:a/acct:inst-1::';
  server!: Server;
  url = '';

  async start(): Promise<this> {
    const app = express();
    app.post('/identity/token', express.urlencoded({ extended: false }), (req, res) => {
      if (
        req.body.grant_type !== 'urn:ibm:params:oauth:grant-type:apikey' ||
        req.body.apikey !== this.apiKey
      ) {
        res
          .status(400)
          .json({ errorCode: 'BXNIM0415E', errorMessage: 'Provided API key could not be found.' });
        return;
      }
      this.tokensIssued++;
      res.json({
        access_token: `tok-${this.tokensIssued}`,
        refresh_token: 'not_supported',
        token_type: 'Bearer',
        expires_in: this.tokenTtlSeconds,
        expiration: Math.floor(Date.now() / 1000) + this.tokenTtlSeconds,
      });
    });
    app.use('/api/v1', (req, res, next) => {
      this.calls.push({ path: req.path, query: req.query as Record<string, string> });
      const token = (req.headers.authorization ?? '').replace(/^Bearer /, '');
      if (!token.startsWith('tok-') || this.revoked.has(token)) {
        res.status(401).json({ trace: 't', errors: [{ code: 'unauthorized', message: 'Invalid token' }] });
        return;
      }
      if (req.headers['service-crn'] !== this.crn || !req.headers['ibm-api-version']) {
        res
          .status(403)
          .json({ trace: 't', errors: [{ code: 'forbidden', message: 'No access to instance' }] });
        return;
      }
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
      next();
    });
    app.get('/api/v1/backends', (_req, res) => {
      res.json({
        devices: this.backends.map((b) => ({
          name: b.name,
          status: { name: b.status, reason: b.status === 'online' ? undefined : 'maintenance' },
          is_simulator: b.is_simulator ?? false,
          qubits: b.qubits ?? 156,
          clops: { type: 'hardware', value: 250000 },
          processor_type: { family: 'Heron', revision: '2', segment: null },
          queue_length: b.queue_length,
          wait_time_seconds: b.wait === undefined ? null : { average: b.wait, p50: b.wait, p95: b.wait * 3 },
        })),
      });
    });
    app.get('/api/v1/jobs', (req, res) => {
      const limit = Math.min(Number(req.query.limit ?? 200), 200);
      const offset = Number(req.query.offset ?? 0);
      const after = req.query.created_after ? Date.parse(String(req.query.created_after)) : undefined;
      const matching = this.jobs
        .filter((j) => after === undefined || Date.parse(j.created) >= after)
        .sort((a, b) => Date.parse(b.created) - Date.parse(a.created));
      res.json({
        jobs: matching.slice(offset, offset + limit).map((j) => ({
          id: j.id,
          backend: j.backend,
          state: { status: j.status, reason_code: j.reason_code },
          status: j.status,
          program: { id: j.program ?? 'sampler' },
          created: j.created,
          cost: 600,
          user_id: j.user_id ?? 'IBMid-1',
          tags: ['exp'],
          usage:
            j.qpu_seconds === undefined
              ? undefined
              : { qpu_charge_time_seconds: j.qpu_seconds, status: 'complete' },
        })),
        count: matching.length,
        limit,
        offset,
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
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

export class FakeIonq {
  backends: {
    backend: string;
    status: 'available' | 'unavailable';
    qubits: number;
    average_queue_time: number;
    degraded?: boolean;
  }[] = [];
  jobs: {
    id: string;
    status: string;
    backend: string;
    submitted_at: string;
    started_at?: string;
    completed_at?: string;
    billed_us?: number;
    failure?: { code: string; message: string };
  }[] = [];
  readonly apiKey = 'ionq-key';
  pages = 0;
  server!: Server;
  url = '';

  async start(): Promise<this> {
    const app = express();
    app.use((req, res, next) => {
      if (req.headers.authorization !== `apiKey ${this.apiKey}`) {
        res.status(401).json({ error: 'Unauthorized', message: 'Invalid key', statusCode: 401 });
        return;
      }
      next();
    });
    app.get('/v0.4/backends', (_req, res) => {
      res.json(
        this.backends.map((b) => ({
          ...b,
          degraded: b.degraded ?? false,
          last_updated: '2026-11-20T00:00:00Z',
        })),
      );
    });
    app.get('/v0.4/jobs', (req, res) => {
      this.pages++;
      const limit = Number(req.query.limit ?? 100);
      const start = req.query.next ? Number(req.query.next) : 0;
      const sorted = [...this.jobs].sort((a, b) => Date.parse(b.submitted_at) - Date.parse(a.submitted_at));
      const page = sorted.slice(start, start + limit);
      res.json({
        jobs: page.map((j) => ({
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
        })),
        next: start + limit < sorted.length ? String(start + limit) : null,
      });
    });
    await new Promise<void>((resolve) => {
      this.server = app.listen(0, '127.0.0.1', () => resolve());
    });
    const addr = this.server.address() as { port: number };
    this.url = `http://127.0.0.1:${addr.port}/v0.4`;
    return this;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
