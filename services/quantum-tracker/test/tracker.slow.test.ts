import { connect } from 'node:net';
import { OUTBOX_TABLE } from '@qlab/events';
import { pgTestUrl, waitFor } from '@qlab/testkit';
import WebSocket from 'ws';
import { ibmJobStatus } from '../src/providers/ibm';
import { ionqJobStatus } from '../src/providers/ionq';
import { FakeIbm, FakeIonq } from './fake-providers';
import { get, isoAgo, post, type RunningTracker, startTracker } from './helpers';

describe('with no provider configured', () => {
  let t: RunningTracker;
  beforeAll(async () => {
    t = await startTracker();
  });
  afterAll(() => t.close());

  test('it says so and serves no invented data', async () => {
    const health = await get(`${t.url}/health`);
    expect(health.status).toBe(200);
    expect(health.body.notice).toMatch(/no quantum provider/);
    const status = await get(`${t.url}/api/v1/dashboard/system-status`);
    expect(status.body).toMatchObject({ status: 'no_provider', providers_configured: [] });
    expect(status.body.notice).toMatch(/IBM_QUANTUM_TOKEN/);
    for (const path of [
      'jobs',
      'backends',
      'queue',
      'dashboard',
      'analytics/cost-analysis',
      'analytics/job-trends',
      'backends/utilization/weekly',
      'queue/summary',
    ]) {
      const res = await get(`${t.url}/api/v1/${path}`);
      expect(res.status).toBe(200);
      expect(res.body.notice).toBeDefined();
    }
    expect((await get(`${t.url}/api/v1/jobs`)).body).toMatchObject({ jobs: [], total: 0 });
    expect((await get(`${t.url}/api/v1/backends`)).body).toMatchObject({ backends: [], total: 0 });
    const dash = (await get(`${t.url}/api/v1/dashboard`)).body;
    expect(dash.job_stats.total_jobs).toBe(0);
    expect(dash.recent_jobs).toEqual([]);
    expect((await post(`${t.url}/api/v1/dashboard/refresh`)).body.synced).toEqual([]);
    expect((await get(`${t.url}/api/v1/jobs/nope`)).status).toBe(404);
  });

  test('answers (refuses) an upgrade on a path that is not a socket, at once', async () => {
    const { port } = new URL(t.url);
    for (const target of ['/health', '/api/v1/jobs', '/api/v1/ws/nope']) {
      const answer = await new Promise<string>((resolve) => {
        const s = connect(Number(port), '127.0.0.1', () =>
          s.write(
            `GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`,
          ),
        );
        let got = '';
        s.on('data', (d) => {
          got += d.toString();
        });
        s.on('close', () => resolve(got));
        s.setTimeout(3000, () => {
          s.destroy();
          resolve(`TIMEOUT ${got}`);
        });
      });
      expect([target, answer.slice(0, 12)]).toEqual([target, 'HTTP/1.1 404']);
    }
  });
});

// The same behaviour on both engines (PostgreSQL when QLAB_TEST_PG_URL is set).
const pg = pgTestUrl('quantum-tracker');
const engines: [string, string | undefined][] = [
  ['SQLite', undefined],
  ...(pg ? [['PostgreSQL', pg] as [string, string]] : []),
];

describe.each(engines)('IBM Quantum Platform (%s)', (_engine, pgUrl) => {
  let ibm: FakeIbm;
  let t: RunningTracker;
  beforeEach(async () => {
    ibm = await new FakeIbm().start();
    ibm.backends = [
      { name: 'ibm_kingston', status: 'online', queue_length: 42, wait: 1800 },
      { name: 'ibm_torino', status: 'online', queue_length: 3, wait: 60 },
      { name: 'ibm_sim', status: 'online', queue_length: 0, is_simulator: true, qubits: 32 },
    ];
    ibm.jobs = Array.from({ length: 450 }, (_, i) => ({
      id: `job-${i}`,
      backend: i % 3 === 0 ? 'ibm_torino' : 'ibm_kingston',
      status: i % 10 === 0 ? 'Failed' : i < 5 ? 'Queued' : 'Completed',
      created: isoAgo(60 * 24 * (i % 5) + i),
      qpu_seconds: i % 10 === 0 ? undefined : 4,
      user_id: i % 2 ? 'IBMid-alice' : 'IBMid-bob',
    }));
    t = await startTracker({ ibm, price: 2, pgUrl });
  });
  afterEach(async () => {
    await t.close();
    await ibm.close();
  });

  test('a full sync pages through jobs and records backends, queues and usage', async () => {
    const res = await post(`${t.url}/api/v1/dashboard/refresh`);
    expect(res.body.synced[0]).toMatchObject({ provider: 'ibm', ok: true, jobs_seen: 450, backends_seen: 3 });
    expect(ibm.tokensIssued).toBe(1);
    // Oldest first, by keyset: each page starts at the newest `created` seen (inclusive), past
    // the jobs already seen at that instant; parameters don't pile on (exclude_params always).
    const pages = ibm.calls.filter((c) => c.path === '/jobs');
    expect(pages).toHaveLength(3);
    expect(pages.every((c) => c.query.sort === 'ASC' && c.query.exclude_params === 'true')).toBe(true);
    expect(pages[0]!.query.created_after).toBeUndefined();
    expect(pages.slice(1).every((c) => c.query.created_after !== undefined)).toBe(true);
    const jobs = await get(`${t.url}/api/v1/jobs?limit=10`);
    expect(jobs.body.total).toBe(450);
    expect(jobs.body.jobs).toHaveLength(10);
    const stats = (await get(`${t.url}/api/v1/jobs/stats/overview`)).body;
    expect(stats.by_status).toEqual({ completed: 401, failed: 45, queued: 4 });
    expect(stats.success_rate).toBeCloseTo(401 / 446, 3);
    expect(stats.quantum_seconds).toBe(1620);
    expect((await get(`${t.url}/api/v1/jobs/by-status/failed?limit=1`)).body.total).toBe(45);
    expect((await get(`${t.url}/api/v1/jobs/by-backend/ibm_torino`)).body.total).toBe(150);
    expect(
      (await get(`${t.url}/api/v1/backends/filter/simulators`)).body.backends.map(
        (b: { name: string }) => b.name,
      ),
    ).toEqual(['ibm_sim']);
    expect((await get(`${t.url}/api/v1/backends/filter/real-devices`)).body.total).toBe(2);
    expect((await get(`${t.url}/api/v1/queue/longest-wait?limit=1`)).body.queues[0]).toMatchObject({
      backend: 'ibm_kingston',
      queue_length: 42,
      wait_seconds_avg: 1800,
    });
    expect((await get(`${t.url}/api/v1/queue/shortest-wait?limit=1`)).body.queues[0].backend).toBe('ibm_sim');
    expect((await get(`${t.url}/api/v1/queue/summary`)).body).toMatchObject({
      backends: 3,
      total_queued_jobs: 45,
      busiest_backend: { backend: 'ibm_kingston' },
      tracked_queued_jobs: 4,
    });
    const trends = (await get(`${t.url}/api/v1/jobs/trends/daily?days=7`)).body.trends;
    expect(trends).toHaveLength(7);
    expect(trends.reduce((a: number, d: { total: number }) => a + d.total, 0)).toBe(450);
    const cost = (await get(`${t.url}/api/v1/analytics/cost-analysis`)).body;
    expect(cost).toMatchObject({
      price_per_quantum_second: 2,
      currency: 'USD',
      total_quantum_seconds: 1620,
      total_cost: 3240,
    });
    expect(cost.provider_usage[0]).toMatchObject({
      provider: 'ibm',
      consumed_seconds: 120,
      limit_seconds: 600,
    });
    const users = (await get(`${t.url}/api/v1/analytics/user-activity`)).body.users;
    expect(users.map((u: { user_id: string; jobs: number }) => [u.user_id, u.jobs]).sort()).toEqual([
      ['IBMid-alice', 225],
      ['IBMid-bob', 225],
    ]);
    const regions = (await get(`${t.url}/api/v1/analytics/regional-stats`)).body.regions;
    expect(regions).toEqual([expect.objectContaining({ region: 'eu-de', backends: 3, jobs: 450 })]);
    const dist = (await get(`${t.url}/api/v1/analytics/status-distribution`)).body;
    expect(dist.by_status.completed).toMatchObject({ count: 401 });
    const comparison = (await get(`${t.url}/api/v1/analytics/backend-comparison`)).body.backends;
    expect(comparison.map((b: { backend: string }) => b.backend)).toEqual(['ibm_kingston', 'ibm_torino']);
    const util = (await get(`${t.url}/api/v1/backends/utilization/weekly`)).body.backends;
    expect(util.find((u: { backend: string }) => u.backend === 'ibm_torino')).toMatchObject({
      jobs: 150,
      uptime: 1,
      samples: 1,
    });
    expect((await get(`${t.url}/api/v1/analytics/performance-metrics`)).body.total_jobs).toBe(450);
    expect((await get(`${t.url}/api/v1/dashboard/metrics`)).body.rows.jobs).toBe(450);
    const dash = (await get(`${t.url}/api/v1/dashboard`)).body;
    expect(dash.system_status.status).toBe('ok');
    expect(dash.notice).toBeUndefined();
  });

  test('jobs changing state across syncs are recorded with history, events and live updates', async () => {
    await post(`${t.url}/api/v1/dashboard/refresh`);
    const messages: { type: string; id?: string; to?: string }[] = [];
    const ws = new WebSocket(`${t.url.replace('http', 'ws')}/api/v1/ws/jobs`);
    ws.on('message', (m) => messages.push(JSON.parse(String(m))));
    await waitFor(() => messages.some((m) => m.type === 'welcome'));

    ibm.jobs[1]!.status = 'Running';
    ibm.jobs[2]!.status = 'Cancelled';
    ibm.jobs[2]!.reason_code = 1305;
    ibm.jobs.push({ id: 'job-new', backend: 'ibm_kingston', status: 'Queued', created: isoAgo(0) });
    const second = await post(`${t.url}/api/v1/jobs/sync`);
    expect(second.body.synced[0]).toMatchObject({ ok: true, jobs_changed: 3 });
    // Incremental: only jobs created since the oldest unfinished one (or the last sync) were asked for.
    const window = ibm.calls.filter((c) => c.path === '/jobs' && c.query.pending === undefined).at(-1)!;
    expect(window.query.created_after).toBeDefined();
    // Jobs still open are asked for as IBM's pending list, wherever they sit in time.
    expect(ibm.calls.filter((c) => c.path === '/jobs').at(-1)!.query.pending).toBe('true');
    expect(second.body.synced[0].jobs_seen).toBeLessThan(450);

    const job1 = (await get(`${t.url}/api/v1/jobs/job-1`)).body;
    expect(job1.status).toBe('running');
    expect(job1.history.map((h: { from: string; to: string }) => [h.from, h.to])).toEqual([
      [null, 'queued'],
      ['queued', 'running'],
    ]);
    expect((await get(`${t.url}/api/v1/jobs/job-2`)).body.status).toBe('failed');
    await waitFor(() => messages.filter((m) => m.type === 'job.status_changed').length === 3);
    expect(messages.find((m) => m.id === 'job-new')).toMatchObject({ to: 'queued' });
    const events = await t.knex(OUTBOX_TABLE).select('topic', 'payload');
    const jobEvents = events.filter((e) => e.topic === 'qlab/quantum-tracker/tracker.job.status_changed');
    expect(jobEvents).toHaveLength(3);
    const data = jobEvents.map((e) => JSON.parse(e.payload).data);
    expect(data).toContainEqual(
      expect.objectContaining({ provider: 'ibm', job_id: 'job-1', from: 'queued', to: 'running' }),
    );
    expect(data).toContainEqual(expect.objectContaining({ job_id: 'job-new', from: null, to: 'queued' }));
    ws.close();
  });

  test('a backend going offline is recorded, announced and filtered out of operational', async () => {
    await post(`${t.url}/api/v1/backends/sync`);
    const queue: { type: string }[] = [];
    const ws = new WebSocket(`${t.url.replace('http', 'ws')}/api/v1/ws/queue`);
    ws.on('message', (m) => queue.push(JSON.parse(String(m))));
    await waitFor(() => queue.length > 0);
    ibm.backends[0]!.status = 'offline';
    ibm.backends.pop();
    await post(`${t.url}/api/v1/backends/sync`);
    const ops = (await get(`${t.url}/api/v1/backends/filter/operational`)).body.backends.map(
      (b: { name: string }) => b.name,
    );
    expect(ops).toEqual(['ibm_torino']);
    const kingston = (await get(`${t.url}/api/v1/backends/ibm_kingston`)).body;
    expect(kingston).toMatchObject({ status: 'offline', operational: false, status_reason: 'maintenance' });
    expect(kingston.history.map((h: { status: string }) => h.status)).toEqual(['online', 'offline']);
    expect((await get(`${t.url}/api/v1/backends/ibm_sim`)).body.status).toBe('offline');
    const events = await t
      .knex(OUTBOX_TABLE)
      .where('topic', 'qlab/quantum-tracker/tracker.backend.status_changed');
    // three first sightings, then kingston and the unlisted simulator going offline
    expect(events).toHaveLength(5);
    await waitFor(() => queue.some((m) => m.type === 'queue.updated'));
    expect((await get(`${t.url}/api/v1/queue/by-backend/ibm_kingston`)).body.history).toHaveLength(2);
    ws.close();
  });

  test('an expired token is renewed, and a 401 gets one fresh token before giving up', async () => {
    // A token stated to live 0 s is still used for a minute: never one IAM exchange per call.
    ibm.tokenTtlSeconds = 0;
    await post(`${t.url}/api/v1/backends/sync`);
    await post(`${t.url}/api/v1/backends/sync`);
    expect(ibm.tokensIssued).toBe(1);
    ibm.revoked.add('tok-1');
    await post(`${t.url}/api/v1/backends/sync`);
    expect(ibm.tokensIssued).toBe(2);
    ibm.tokenTtlSeconds = 3600;
    await post(`${t.url}/api/v1/backends/sync`);
    ibm.revoked.add(`tok-${ibm.tokensIssued}`);
    const res = await post(`${t.url}/api/v1/backends/sync`);
    expect(res.body.synced[0].ok).toBe(true);
    expect(ibm.tokensIssued).toBe(3);
  });

  test('429 with Retry-After is retried; persistent failures are reported per provider and old data is still served', async () => {
    await post(`${t.url}/api/v1/dashboard/refresh`);
    ibm.fault = { status: 429, retryAfter: '0', times: 1 };
    expect((await post(`${t.url}/api/v1/backends/sync`)).body.synced[0].ok).toBe(true);

    ibm.fault = { status: 500, times: 100 };
    const failed = (await post(`${t.url}/api/v1/backends/sync`)).body.synced[0];
    expect(failed).toMatchObject({ ok: false });
    expect(failed.error).toMatch(/500/);
    const status = (await get(`${t.url}/api/v1/dashboard/system-status`)).body;
    expect(status.status).toBe('degraded');
    expect(status.providers[0]).toMatchObject({
      name: 'ibm',
      healthy: false,
      last_error_status: 500,
      consecutive_failures: 1,
    });
    expect(status.providers[0].last_success_at).not.toBeNull();
    expect((await get(`${t.url}/api/v1/backends`)).body.total).toBe(3);
    const events = await t.knex(OUTBOX_TABLE).where('topic', 'qlab/quantum-tracker/tracker.sync.failed');
    expect(events).toHaveLength(1);

    ibm.fault = { status: 429, retryAfter: '120', times: 100 };
    const limited = (await post(`${t.url}/api/v1/backends/sync`)).body.synced[0];
    expect(limited.ok).toBe(false);
    expect(limited.error).toMatch(/429/);

    ibm.fault = undefined;
    ibm.malformed = true;
    const bad = (await post(`${t.url}/api/v1/backends/sync`)).body.synced[0];
    expect(bad).toMatchObject({ ok: false });
    expect(bad.error).toMatch(/malformed JSON/);
    ibm.malformed = false;
    expect((await post(`${t.url}/api/v1/backends/sync`)).body.synced[0].ok).toBe(true);
    expect((await get(`${t.url}/api/v1/dashboard/system-status`)).body.status).toBe('ok');
  });

  test('bad query parameters are 400 problems', async () => {
    for (const q of [
      'jobs?limit=9999',
      'jobs?status=exploded',
      'jobs?since=yesterday',
      'jobs/trends/daily?days=0',
      'jobs?nope=1',
    ]) {
      const res = await fetch(`${t.url}/api/v1/${q}`);
      expect(res.status).toBe(400);
      expect(res.headers.get('content-type')).toContain('problem+json');
    }
    expect((await post(`${t.url}/api/v1/jobs/sync?provider=ionq`)).status).toBe(404);
  });
});

describe('IonQ', () => {
  test('backends and cursor-paged jobs are read and mapped to the common statuses', async () => {
    const ionq = await new FakeIonq().start();
    ionq.backends = [
      { backend: 'qpu.forte-1', status: 'available', qubits: 36, average_queue_time: 1_200_000 },
      { backend: 'qpu.aria-1', status: 'unavailable', qubits: 25, average_queue_time: 0, degraded: true },
      { backend: 'simulator', status: 'available', qubits: 29, average_queue_time: 0 },
    ];
    ionq.jobs = Array.from({ length: 250 }, (_, i) => ({
      id: `q-${i}`,
      status: ['completed', 'failed', 'ready', 'started', 'canceled', 'submitted'][i % 6]!,
      backend: 'qpu.forte-1',
      submitted_at: isoAgo(i),
      started_at: isoAgo(i - 0.5),
      completed_at: i % 6 === 0 ? isoAgo(i - 1) : undefined,
      billed_us: i % 6 === 0 ? 5_000_000 : undefined,
      failure: i % 6 === 1 ? { code: 'CompilationError', message: 'bad circuit' } : undefined,
    }));
    const t = await startTracker({ ionq });
    try {
      const res = await post(`${t.url}/api/v1/dashboard/refresh`);
      expect(res.body.synced[0]).toMatchObject({
        provider: 'ionq',
        ok: true,
        jobs_seen: 250,
        backends_seen: 3,
      });
      // Three pages of the whole list, and each open status listed on its own (one page each).
      expect(ionq.pages).toBe(6);
      expect(ionq.statusCalls.sort()).toEqual(['ready', 'started', 'submitted']);
      const stats = (await get(`${t.url}/api/v1/jobs/stats/overview`)).body;
      expect(stats.by_status).toMatchObject({
        completed: 42,
        failed: 42,
        queued: 42,
        running: 42,
        cancelled: 41,
        validating: 41,
      });
      const failed = (await get(`${t.url}/api/v1/jobs/q-1`)).body;
      expect(failed).toMatchObject({
        provider: 'ionq',
        status: 'failed',
        raw_status: 'failed',
        failure_reason: 'bad circuit',
      });
      const forte = (await get(`${t.url}/api/v1/backends/qpu.forte-1`)).body;
      expect(forte).toMatchObject({ status: 'online', qubits: 36, wait_seconds_avg: 1200, region: 'us' });
      expect((await get(`${t.url}/api/v1/backends/qpu.aria-1`)).body).toMatchObject({
        status: 'offline',
        degraded: true,
      });
      expect((await get(`${t.url}/api/v1/backends/filter/simulators`)).body.total).toBe(1);
      expect((await get(`${t.url}/api/v1/jobs/q-0`)).body.quantum_seconds).toBe(5);
    } finally {
      await t.close();
      await ionq.close();
    }
  });
});

test('status vocabularies map as documented', () => {
  expect(
    ['Queued', 'RUNNING', 'Completed', 'Failed', 'Cancelled', 'Cancelled - Ran too long', 'weird'].map((s) =>
      ibmJobStatus(s),
    ),
  ).toEqual(['queued', 'running', 'completed', 'failed', 'cancelled', 'failed', 'unknown']);
  expect(ibmJobStatus('Cancelled', 1305)).toBe('failed');
  expect(
    ['submitted', 'ready', 'started', 'running', 'completed', 'failed', 'canceled', '??'].map(ionqJobStatus),
  ).toEqual(['validating', 'queued', 'running', 'running', 'completed', 'failed', 'cancelled', 'unknown']);
});

test('WebSockets refuse a missing token when one is set', async () => {
  const t = await startTracker({ apiToken: 'secret' });
  try {
    const refused = await new Promise<string>((resolve) => {
      const ws = new WebSocket(`${t.url.replace('http', 'ws')}/api/v1/ws/dashboard`);
      ws.on('unexpected-response', (_req, res) => resolve(String(res.statusCode)));
      ws.on('open', () => resolve('open'));
      ws.on('error', () => undefined);
    });
    expect(refused).toBe('401');
    const ok = await new Promise<string>((resolve) => {
      const ws = new WebSocket(`${t.url.replace('http', 'ws')}/api/v1/ws/dashboard?token=secret`);
      ws.on('message', (m) => {
        resolve(JSON.parse(String(m)).type);
        ws.close();
      });
      ws.on('error', () => resolve('error'));
    });
    expect(ok).toBe('welcome');
    expect((await get(`${t.url}/api/v1/jobs`)).status).toBe(401);
    // ReDoc at /redoc, as the seed's FastAPI served it, from this service and open like /docs.
    const redoc = await fetch(`${t.url}/redoc`);
    expect(redoc.status).toBe(200);
    expect(await redoc.text()).toContain('<redoc spec-url="/openapi.json">');
    const bundle = await fetch(`${t.url}/redoc/redoc.standalone.js`);
    expect(bundle.status).toBe(200);
    expect((await bundle.text()).length).toBeGreaterThan(100_000);
  } finally {
    await t.close();
  }
});

test('cached answers are served only to callers with the token, and change after a sync', async () => {
  const ibm = await new FakeIbm().start();
  ibm.backends = [{ name: 'ibm_a', status: 'online', queue_length: 1 }];
  const t = await startTracker({ ibm, apiToken: 'secret' });
  const auth = { headers: { Authorization: 'Bearer secret' } };
  try {
    await get(`${t.url}/api/v1/dashboard/refresh`, { method: 'POST', ...auth });
    expect((await get(`${t.url}/api/v1/backends`, auth)).body.total).toBe(1);
    expect((await get(`${t.url}/api/v1/backends`, auth)).body.total).toBe(1);
    expect((await get(`${t.url}/api/v1/backends`)).status).toBe(401);
    expect(
      (await get(`${t.url}/api/v1/backends`, { headers: { Authorization: 'Bearer wrong' } })).status,
    ).toBe(401);
    ibm.backends.push({ name: 'ibm_b', status: 'online', queue_length: 2 });
    await get(`${t.url}/api/v1/backends/sync`, { method: 'POST', ...auth });
    expect((await get(`${t.url}/api/v1/backends`, auth)).body.total).toBe(2);
  } finally {
    await t.close();
    await ibm.close();
  }
});
