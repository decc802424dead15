import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { IndexedCPClient, zipPaths } from '@qlab/client';
import * as tus from 'tus-js-client';
import type { Rng } from './rng';
import { WRITE_KEY } from './stack';

export const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** One acknowledged operation: what the stack promised to keep, and how to find it again. */
export type Acknowledged =
  | { kind: 'tus' | 'indexedcp'; name: string; sha256: string; at: number }
  | { kind: 'calibration'; hashID: string; sha256: string; at: number }
  | { kind: 'result'; hashID: string; name: string; sha256: string; at: number }
  | {
      kind: 'job';
      jobId: string;
      taskType: string;
      inputSha256: string;
      at: number;
      publishes?: { hashID: string; name: string };
      /** Names this create alone: one job may carry it. */
      createdBy: string;
    }
  | {
      kind: 'analytics';
      /** The model every row of this load names, and no other load. */
      model: string;
      rows: { run_id: string; duration_ms: number; tests_total: number; tests_passed: number }[];
      at: number;
    };

export interface Answer {
  at: number;
  op: string;
  status: number | 'network' | 'incomplete';
}

/**
 * The clients a lab uses, through the gateway with a write key, each retrying as it would:
 * tus-js-client (resumes after errors), the qlab IndexedCP client (buffers and retries chunks),
 * calibration uploads, jobs with an input file, NDJSON ingest and the overview. Only what the
 * stack acknowledged goes into the ledger; every answer is kept to judge 5xx outside faults.
 */
export class Workload {
  readonly ledger: Acknowledged[] = [];
  readonly answers: Answer[] = [];
  /** Operations a client gave up on (after its own retries), with when. */
  readonly clientErrors: { at: number; what: string }[] = [];
  private running = false;
  /** Requests (and uploads) under way, per service they reach, for faults aimed mid-request. */
  private readonly inFlight = new Map<string, number>();
  private loops: Promise<void>[] = [];
  private n = 0;

  constructor(
    private readonly gatewayUrl: string,
    private readonly workDir: string,
    private readonly rng: Rng,
  ) {
    mkdirSync(workDir, { recursive: true });
  }

  start(concurrency = 3): void {
    this.running = true;
    const kinds = [
      'tus',
      'indexedcp',
      'calibration',
      'result',
      'job',
      'job',
      'analytics',
      'overview',
    ] as const;
    for (let i = 0; i < concurrency; i++)
      this.loops.push(
        (async () => {
          while (this.running) {
            const kind = kinds[this.rng.int(kinds.length)]!;
            try {
              await this.once(kind);
            } catch (err) {
              this.gaveUp(`${kind}: ${(err as Error).message}`);
            }
          }
        })(),
      );
  }

  /** Stops starting operations and waits for the ones under way (with their retries). */
  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  /** The services a route reaches through the gateway (the views reach every one). */
  private static servicesOf(route: string): string[] {
    const all = ['calibration-store', 'chunked-upload', 'job-worker', 'quantum-tracker'].concat(
      ['test', 'generator', 'benchmark'].map((d) => `analytics-${d}`),
    );
    if (route.startsWith('/api/store')) return ['gateway', 'calibration-store'];
    if (route.startsWith('/api/uploads')) return ['gateway', 'chunked-upload'];
    if (route.startsWith('/api/jobs')) return ['gateway', 'job-worker'];
    const domain = /^\/api\/db\/(test|generator|benchmark)\//.exec(route)?.[1];
    if (domain) return ['gateway', `analytics-${domain}`];
    return ['gateway', ...all];
  }

  private async during<T>(route: string, work: () => Promise<T>): Promise<T> {
    const services = Workload.servicesOf(route);
    for (const s of services) this.inFlight.set(s, (this.inFlight.get(s) ?? 0) + 1);
    try {
      return await work();
    } finally {
      for (const s of services) this.inFlight.set(s, (this.inFlight.get(s) ?? 1) - 1);
    }
  }

  /** Waits (up to `ms`) until something is under way at `service`; whether it was. */
  async busy(service: string, ms = 10_000): Promise<boolean> {
    const until = Date.now() + ms;
    while (Date.now() < until) {
      if ((this.inFlight.get(service) ?? 0) > 0) return true;
      await new Promise((r) => setTimeout(r, 10));
    }
    return false;
  }

  private gaveUp(what: string): void {
    this.clientErrors.push({ at: Date.now(), what: what.slice(0, 300) });
  }

  private unique(prefix: string): string {
    return `${prefix}-${process.pid}-${++this.n}-${randomBytes(3).toString('hex')}`;
  }

  private async once(kind: string): Promise<void> {
    if (kind === 'tus') return this.tusUpload();
    if (kind === 'indexedcp') return this.indexedcpUpload();
    if (kind === 'calibration') return this.archive('calibration');
    if (kind === 'result') return this.archive('result');
    if (kind === 'job') return this.job();
    if (kind === 'analytics') return this.analytics();
    await this.views();
  }

  /**
   * The cross-service views: overview, search and the model view. A view that answers but
   * names services it could not reach is recorded as "incomplete", judged as a 5xx is.
   */
  private async views(): Promise<void> {
    const views: [string, string, RequestInit['method'], string | undefined][] = [
      ['overview', '/api/db/overview', 'GET', undefined],
      ['search', '/api/db/search', 'POST', JSON.stringify({ query: 'chaos', limit: 5 })],
      ['model', '/api/db/model/chaos-model', 'GET', undefined],
    ];
    const [op, route, method, body] = views[this.rng.int(views.length)]!;
    const res = await this.call(
      op,
      route,
      {
        method,
        headers: body ? { 'Content-Type': 'application/json' } : {},
        ...(body ? { body: () => body } : {}),
      },
      1,
    );
    if (res?.ok) {
      const answer = (await res.json()) as { completed?: boolean; missing_services?: string[] };
      if (answer.completed === false)
        this.answers.push({
          at: Date.now(),
          op: `${op} (missing ${answer.missing_services?.join(', ')})`,
          status: 'incomplete',
        });
    } else await res?.body?.cancel();
  }

  /** A call with a client's retries: network errors and 5xx are tried again, up to `tries`. */
  private async call(
    op: string,
    route: string,
    init: Omit<RequestInit, 'body'> & { body?: () => RequestInit['body'] },
    tries = 10,
  ): Promise<Response | undefined> {
    for (let i = 0; i < tries; i++) {
      let status: Answer['status'] = 'network';
      try {
        // A fresh body for every try: a stream or form is spent by the one before.
        const res = await this.during(route, () =>
          fetch(`${this.gatewayUrl}${route}`, {
            ...init,
            body: init.body?.(),
            headers: { 'X-API-Key': WRITE_KEY, ...(init.headers as Record<string, string>) },
            signal: AbortSignal.timeout(20_000),
          }),
        );
        status = res.status;
        this.answers.push({ at: Date.now(), op, status });
        if (res.status < 500) return res;
        await res.body?.cancel();
      } catch {
        this.answers.push({ at: Date.now(), op, status });
      }
      await new Promise((r) => setTimeout(r, 500 * Math.min(i + 1, 4)));
    }
    return undefined;
  }

  private async tusUpload(): Promise<void> {
    const name = `${this.unique('tus')}.bin`;
    const data = randomBytes(256 * 1024 + this.rng.int(768 * 1024));
    await this.during(
      '/api/uploads',
      () =>
        new Promise<void>((resolve) => {
          const upload = new tus.Upload(data, {
            endpoint: `${this.gatewayUrl}/api/uploads/files/`,
            headers: { 'X-API-Key': WRITE_KEY },
            metadata: { filename: name },
            chunkSize: 128 * 1024,
            retryDelays: [200, 500, 1000, 2000, 3000, 5000, 5000, 5000, 5000, 5000],
            onAfterResponse: (_req, res) => {
              this.answers.push({ at: Date.now(), op: 'tus', status: res.getStatus() });
            },
            onSuccess: () => {
              this.ledger.push({ kind: 'tus', name, sha256: sha256(data), at: Date.now() });
              resolve();
            },
            onError: (err) => {
              this.gaveUp(`tus ${name}: ${err.message.slice(0, 200)}`);
              resolve();
            },
          });
          upload.start();
        }),
    );
  }

  private async indexedcpUpload(): Promise<void> {
    const name = `${this.unique('icp')}.bin`;
    const file = path.join(this.workDir, name);
    const data = randomBytes(64 * 1024 + this.rng.int(192 * 1024));
    writeFileSync(file, data);
    const client = new IndexedCPClient({
      serverUrl: `${this.gatewayUrl}/api/uploads`,
      apiKey: WRITE_KEY,
      storagePath: path.join(this.workDir, `${name}.db`),
      chunkSize: 64 * 1024,
      initialRetryDelay: 200,
      maxRetryDelay: 3000,
      maxRetries: 15,
      logLevel: 'silent',
      // Its answers are judged like every other: a 5xx outside a fault window is a failure.
      onAfterResponse: ({ status }) => this.answers.push({ at: Date.now(), op: 'indexedcp', status }),
    });
    try {
      await client.initialize();
      await client.addFile(file, { name });
      const files = await this.during('/api/uploads', () => client.uploadBufferedFiles());
      if (files[name] === 'complete')
        this.ledger.push({ kind: 'indexedcp', name, sha256: sha256(data), at: Date.now() });
      else this.gaveUp(`indexedcp ${name}: ${files[name]}`);
    } finally {
      await client.close();
    }
  }

  /** A calibration or a result archive (a zip of one JSON file, made by the client's zipPaths). */
  private async archive(kind: 'calibration' | 'result'): Promise<void> {
    const hashID = this.unique('cal');
    const name = `run-${this.rng.int(1000)}`;
    const dir = path.join(this.workDir, hashID);
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'qubits.json'), JSON.stringify({ hashID, t1: this.rng.int(1000) }));
    const zip = await zipPaths([dir]);
    const chunks: Buffer[] = [];
    for await (const c of zip.stream) chunks.push(c as Buffer);
    const archive = Buffer.concat(chunks);
    const route = kind === 'calibration' ? '/api/store/calibrations/upload' : '/api/store/results/upload';
    // One key for this upload and all its retries: a retry after a lost answer stores nothing new.
    const res = await this.call(`${kind}.upload`, route, {
      method: 'POST',
      headers: { 'Idempotency-Key': `chaos-${hashID}` },
      body: () => {
        const form = new FormData();
        form.set('hashID', hashID);
        if (kind === 'result') form.set('name', name);
        form.set('notes', 'chaos');
        form.set('archive', new Blob([archive], { type: 'application/zip' }), 'archive.zip');
        return form;
      },
    });
    if (res?.status === 200 || res?.status === 201)
      this.ledger.push(
        kind === 'calibration'
          ? { kind, hashID, sha256: sha256(archive), at: Date.now() }
          : { kind, hashID, name, sha256: sha256(archive), at: Date.now() },
      );
    else if (res) this.gaveUp(`${kind} ${hashID}: ${res.status} ${(await res.text()).slice(0, 200)}`);
  }

  /** A job of one of the built-in handlers, with an input file. */
  private async job(): Promise<void> {
    const taskType = ['checksum.sha256', 'archive.zip', 'calibration.publish'][this.rng.int(3)]!;
    const input = randomBytes(4096 + this.rng.int(60_000));
    const publishes =
      taskType === 'calibration.publish' ? { hashID: this.unique('pub'), name: 'published' } : undefined;
    // Every try of this create is one job: a retry after a lost answer must not queue a second.
    // created_by names this create alone, so the verdict can count the jobs it made.
    const createdBy = this.unique('create');
    const res = await this.call('job.create', '/api/jobs', {
      method: 'POST',
      headers: { 'Idempotency-Key': createdBy },
      body: () => {
        const form = new FormData();
        form.set('task_type', taskType);
        form.set('max_retries', '5');
        form.set('created_by', createdBy);
        if (publishes) form.set('params', JSON.stringify(publishes));
        form.set('file', new Blob([input]), 'input.bin');
        return form;
      },
    });
    if (res?.status === 201) {
      const job = (await res.json()) as { job_id: string };
      this.ledger.push({
        kind: 'job',
        jobId: job.job_id,
        createdBy,
        taskType,
        inputSha256: sha256(input),
        at: Date.now(),
        publishes,
      });
    } else if (res) this.gaveUp(`job ${taskType}: ${res.status} ${(await res.text()).slice(0, 200)}`);
  }

  private async analytics(): Promise<void> {
    // One model per load, so its summary counts this load's rows alone (a retried load counted
    // twice would show), and each row's own figures, so the rows read back can be compared.
    const model = this.unique('model');
    const rows = Array.from({ length: 5 }, () => ({
      run_id: this.unique('run'),
      model,
      hardware: 'cpu',
      started_at: new Date().toISOString(),
      duration_ms: 1 + this.rng.int(100_000),
      status: 'passed',
      test_type: 'integration',
      tests_total: 1 + this.rng.int(50),
      tests_passed: 0,
    }));
    for (const r of rows) r.tests_passed = this.rng.int(r.tests_total + 1);
    const res = await this.call('analytics.bulk', '/api/db/test/runs/bulk', {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-ndjson' },
      body: () => `${rows.map((r) => JSON.stringify(r)).join('\n')}\n`,
    });
    if (res && res.status < 300) {
      await res.body?.cancel();
      this.ledger.push({
        kind: 'analytics',
        model,
        rows: rows.map(({ run_id, duration_ms, tests_total, tests_passed }) => ({
          run_id,
          duration_ms,
          tests_total,
          tests_passed,
        })),
        at: Date.now(),
      });
    } else if (res) this.gaveUp(`analytics: ${res.status} ${(await res.text()).slice(0, 200)}`);
  }
}
