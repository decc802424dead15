import path from 'node:path';
import { runCli } from '@qlab/client/cli';
import { listen, silentLogger } from '@qlab/kit';
import { tempDir, waitFor } from '@qlab/testkit';
import { composeDomain, startDomain } from 'analytics/testing';
import { startTracker } from 'quantum-tracker/testing';
import WebSocket from 'ws';
import { LocalRateLimiter } from '../src/rate-limit';
import { startGateway } from './helpers';

const ADMIN = 'admin-key-0123456789abcdef';
const READER = 'read-key-0123456789abcdefg';

describe('gateway against real services', () => {
  const tmp = tempDir('qlab-gateway-');
  const closers: (() => Promise<void> | void)[] = [];
  let url: string;

  beforeAll(async () => {
    const analytics = await startDomain('benchmark', {
      apiToken: 'analytics-token',
      maxBulkBytes: 1 << 30,
      queryTimeoutMs: 5000,
    });
    closers.push(() => analytics.cleanup());
    // The tracker as production composes it: fast answers and live sockets included.
    const tracker = await startTracker();
    closers.push(() => tracker.close());

    const gw = await startGateway({
      keys: [
        [ADMIN, ['read', 'write', 'admin']],
        [READER, ['read']],
      ],
      services: {
        'analytics-benchmark': { url: analytics.url, token: 'analytics-token' },
        'quantum-tracker': { url: tracker.url },
      },
      rateLimit: 1000,
    });
    url = gw.url;
    closers.push(() => gw.close());
  });
  afterAll(async () => {
    for (const c of closers.reverse()) await c();
    tmp.cleanup();
  });

  // biome-ignore lint/suspicious/noExplicitAny: tests read whatever JSON came back.
  type AnyJson = Omit<Response, 'json'> & { json(): Promise<any> };
  const call = (p: string, init: RequestInit & { key?: string } = {}) =>
    fetch(`${url}${p}`, {
      ...init,
      headers: { ...(init.key ? { 'X-API-Key': init.key } : {}), ...(init.headers as object) },
    }) as Promise<AnyJson>;

  test('keys: 401 without or with an unknown key, 403 without the scope', async () => {
    expect((await call('/health')).status).toBe(200);
    const none = await call('/api/db/overview');
    expect(none.status).toBe(401);
    expect(none.headers.get('content-type')).toContain('problem+json');
    expect((await call('/api/db/overview', { key: 'nope-nope-nope-nope-nope' })).status).toBe(401);
    expect((await call('/api/db/overview', { headers: { Authorization: `Bearer ${READER}` } })).status).toBe(
      200,
    );
    expect(
      (
        await call('/api/db/benchmark/runs', {
          key: READER,
          method: 'POST',
          body: '{}',
          headers: { 'content-type': 'application/json' },
        })
      ).status,
    ).toBe(403);
    expect((await call('/api/keys', { key: READER })).status).toBe(403);
  });

  test('the seed examples: ingest through the mount, then model view and search across services', async () => {
    const ingest = await call('/api/db/benchmark/runs', {
      key: ADMIN,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ run_id: 'g1', model: 'bert-base-uncased', status: 'completed', latency_ms: 5 }),
    });
    expect(ingest.status).toBe(201);
    // NDJSON streams through the proxy untouched.
    const bulk = await call('/api/db/benchmark/runs/bulk', {
      key: ADMIN,
      method: 'POST',
      headers: { 'content-type': 'application/x-ndjson' },
      body: '{"model":"bert-base-uncased","status":"failed"}\n{"model":"gpt2","status":"completed"}\n',
    });
    expect(await bulk.json()).toMatchObject({ accepted: 2 });
    const runs = await (await call('/api/db/benchmark/runs', { key: READER })).json();
    expect(runs.total).toBe(3);

    const model = await call('/api/db/model/bert-base-uncased', { key: READER });
    const m = await model.json();
    expect(m.overview).toMatchObject({
      total_benchmark_runs: 2,
      benchmark_success_rate: 0.5,
      total_test_runs: null,
    });
    expect(m.completed).toBe(false);
    expect(m.missing_services).toEqual(['analytics-test', 'analytics-generator']);

    const search = await call('/api/db/search?query=bert-base&limit=10', { key: READER, method: 'POST' });
    expect(search.status).toBe(200);
    expect(search.headers.get('x-gateway-completed')).toBe('false');
    const s = await search.json();
    expect(s.result_counts).toMatchObject({ benchmark: 2, test: 0, total: 2 });
    expect(s.missing_services).toContain('calibration-store');

    const overview = await (await call('/api/db/overview', { key: READER })).json();
    expect(overview.benchmark_stats).toMatchObject({ total_runs: 3 });
    expect(overview.test_stats).toBeNull();
    expect(overview.errors['job-worker'].error).toBeTruthy();
  });

  test('browser preflights to proxied routes are answered without a key', async () => {
    const res = await fetch(`${url}/api/db/benchmark/runs`, {
      method: 'OPTIONS',
      headers: {
        Origin: 'https://dash.example',
        'Access-Control-Request-Method': 'POST',
        'Access-Control-Request-Headers': 'x-api-key,content-type',
      },
    });
    expect(res.status).toBeLessThan(300);
    expect(res.headers.get('access-control-allow-origin')).toBe('https://dash.example');
  });

  test('a service that is down gives 502 problem+json; a service error passes through unchanged', async () => {
    const down = await call('/api/jobs/stats', { key: READER });
    expect(down.status).toBe(502);
    expect(down.headers.get('content-type')).toContain('problem+json');
    const missing = await call('/api/db/benchmark/run/never', { key: READER });
    expect(missing.status).toBe(404);
    expect((await missing.json()).detail).toMatch(/never/);
  });

  test('WebSocket upgrades to the tracker are proxied after the key check', async () => {
    const ws = `${url.replace('http', 'ws')}/api/v1/ws/dashboard`;
    const refused = await new Promise<number>((resolve) => {
      const s = new WebSocket(ws);
      s.on('unexpected-response', (_q, r) => resolve(r.statusCode ?? 0));
      s.on('error', () => undefined);
    });
    expect(refused).toBe(401);
    const first = await new Promise<string>((resolve, reject) => {
      const s = new WebSocket(`${ws}?api_key=${READER}`);
      s.on('message', (m) => {
        resolve(JSON.parse(String(m)).type);
        s.close();
      });
      s.on('error', reject);
    });
    expect(first).toBe('welcome');
  });

  test('qlab keys create, list and revoke work against the gateway', async () => {
    const out: string[] = [];
    const io = { out: (l: string) => out.push(l), err: (l: string) => out.push(`ERR ${l}`), progress: false };
    const args = ['--gateway', url, '--api-key', ADMIN];
    expect(await runCli(['keys', 'create', 'laptop', '--scopes', 'read,write', ...args], io)).toBe(0);
    const key = out[0]!.split('\n')[0]!;
    const id = /id ([0-9a-f]{16})/.exec(out[0]!)![1]!;
    expect((await call('/api/db/benchmark/runs', { key })).status).toBe(200);
    expect(await runCli(['keys', 'list', ...args], io)).toBe(0);
    expect(out[1]).toContain('laptop');
    expect(out[1]).not.toContain(key);
    expect(await runCli(['keys', 'revoke', id, ...args], io)).toBe(0);
    expect((await call('/api/db/benchmark/runs', { key })).status).toBe(401);
    expect(await runCli(['keys', 'list', '--gateway', url, '--api-key', READER], io)).toBe(1);
    expect(out.at(-1)).toMatch(/403/);
  });

  test('one OpenAPI document covers the gateway and every reachable service, at public paths', async () => {
    const doc = await (await call('/openapi.json')).json();
    expect(doc.paths['/api/db/overview']).toBeDefined();
    expect(doc.paths['/api/db/benchmark/runs/bulk'].post.tags).toEqual(['analytics-benchmark']);
    expect(doc.paths['/api/v1/dashboard/system-status']).toBeDefined();
    expect(doc.info.description).toContain('job-worker');
    expect((await call('/docs/')).status).toBe(200);
    // Every operation names the scope the gateway asks for.
    expect(doc.paths['/api/keys'].post['x-qlab-scope']).toBe('admin');
    expect(doc.paths['/api/db/search'].post['x-qlab-scope']).toBe('read');
    expect(doc.paths['/api/db/benchmark/runs/bulk'].post['x-qlab-scope']).toBe('write');
    expect(doc.paths['/api/db/benchmark/search'].post['x-qlab-scope']).toBe('read');
    expect(doc.paths['/api/v1/jobs'].get['x-qlab-scope']).toBe('read');
    const unscoped = Object.entries(doc.paths as Record<string, Record<string, { 'x-qlab-scope'?: string }>>)
      .flatMap(([p, item]) => Object.entries(item).map(([m, op]) => [p, m, op['x-qlab-scope']]))
      .filter(([, , scope]) => !['none', 'any', 'read', 'write', 'admin'].includes(String(scope)));
    expect(unscoped).toEqual([]);
  });

  test('keys are created, listed and revoked by admins, and rate limits answer 429', async () => {
    const created = await call('/api/keys', {
      key: ADMIN,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'ci', scopes: ['read'] }),
    });
    expect(created.status).toBe(201);
    const { key, id } = await created.json();
    expect((await call('/api/db/benchmark/runs', { key })).status).toBe(200);
    const list = await (await call('/api/keys', { key: ADMIN })).json();
    expect(list.keys.find((k: { id: string }) => k.id === id)).toMatchObject({
      name: 'ci',
      scopes: ['read'],
    });
    expect(JSON.stringify(list)).not.toContain(key);
    expect((await call(`/api/keys/${id}`, { key: ADMIN, method: 'DELETE' })).status).toBe(200);
    expect((await call('/api/db/benchmark/runs', { key })).status).toBe(401);
  });
});

test('the rate limiter allows N per clock minute per key, then says how long to wait', async () => {
  const r = new LocalRateLimiter(2);
  expect(await r.take('a', 0)).toBe(0);
  expect(await r.take('a', 1)).toBe(0);
  expect(await r.take('a', 2)).toBe(59_998);
  expect(await r.take('b', 2)).toBe(0);
  expect(await r.take('a', 60_000)).toBe(0);
  expect(await new LocalRateLimiter(0).take('a', 5)).toBe(0);
});

test('per-key rate limits answer 429 with Retry-After over HTTP', async () => {
  const gw = await startGateway({ keys: [[READER, ['read']]], rateLimit: 2, aggregateTimeoutMs: 500 });
  try {
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++)
      statuses.push((await fetch(`${gw.url}/api/db/overview`, { headers: { 'X-API-Key': READER } })).status);
    // Every service is down: the aggregate is a 502 of its own, not a 500.
    expect(statuses.slice(0, 2)).toEqual([502, 502]);
    const limited = await fetch(`${gw.url}/api/db/overview`, { headers: { 'X-API-Key': READER } });
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
  } finally {
    await gw.close();
  }
});

test('/api/events streams CloudEvents from MQTT to WebSocket clients, filtered by topic', async () => {
  const { startEmbeddedBroker } = await import('@qlab/events');
  const mqtt = (await import('mqtt')).default;
  const broker = await startEmbeddedBroker({ port: 0 });
  const gw = await startGateway({ keys: [[READER, ['read']]], mqttUrl: broker.url });
  const publisher = await mqtt.connectAsync(broker.url);
  try {
    const ws = new WebSocket(`${gw.url.replace('http', 'ws')}/api/events?topic=qlab/job-worker/%23`, {
      headers: { 'X-API-Key': READER },
    });
    const got: { type: string; id?: string }[] = [];
    ws.on('message', (m) => got.push(JSON.parse(String(m))));
    // "subscribed" comes once the gateway's broker subscription is in place: no wait needed after it.
    await new Promise((r) => ws.once('message', r));
    await publisher.publishAsync(
      'qlab/calibration-store/calibration.uploaded',
      JSON.stringify({ type: 'calibration.uploaded', id: 'a' }),
      { qos: 1 },
    );
    await publisher.publishAsync(
      'qlab/job-worker/job.completed',
      JSON.stringify({ type: 'job.completed', id: 'b' }),
      { qos: 1 },
    );
    await waitFor(() => got.some((e) => e.id === 'b'));
    expect(got.map((e) => e.type)).toEqual(['subscribed', 'job.completed']);
    ws.close();
    const bad = await new Promise<number>((resolve) => {
      const s = new WebSocket(`${gw.url.replace('http', 'ws')}/api/events?topic=other/%23`, {
        headers: { 'X-API-Key': READER },
      });
      s.on('unexpected-response', (_q, r) => resolve(r.statusCode ?? 0));
      s.on('error', () => undefined);
    });
    expect(bad).toBe(400);
  } finally {
    await publisher.endAsync();
    await gw.close();
    await broker.close();
  }
});

test('a service killed mid-run gives partial aggregates and 502s, then recovers when it is back', async () => {
  const tmp = tempDir('qlab-gateway-kill-');
  const dbPath = path.join(tmp.dir, 'b.duckdb');
  const startAnalytics = async (port: number) => {
    const domain = await composeDomain(
      { domain: 'benchmark', dbPath, queryTimeoutMs: 5000, maxBulkBytes: 1 << 20, loadTimeoutMs: 10_000 },
      { logger: silentLogger() },
    );
    const server = await listen(domain.app, { port, graceMs: 0 });
    return {
      server,
      stop: async () => {
        await server.close();
        domain.close();
      },
    };
  };
  let analytics = await startAnalytics(0);
  const port = analytics.server.port;
  const gw = await startGateway({
    keys: [[READER, ['read']]],
    services: { 'analytics-benchmark': { url: `http://127.0.0.1:${port}` } },
    proxyTimeoutMs: 2000,
  });
  // biome-ignore lint/suspicious/noExplicitAny: tests read whatever JSON came back.
  const overview = async (): Promise<Record<string, any>> => {
    const res = await fetch(`${gw.url}/api/db/overview`, { headers: { 'X-API-Key': READER } });
    return { ...((await res.json()) as object), status: res.status };
  };
  try {
    expect((await overview()).benchmark_stats).toMatchObject({ domain: 'benchmark' });
    await analytics.stop();
    // It was the last service up: with every service down the aggregate is a 502 naming them all.
    const none = await overview();
    expect(none.status).toBe(502);
    expect(none.errors['analytics-benchmark'].error).toBeTruthy();
    const proxied = await fetch(`${gw.url}/api/db/benchmark/runs`, { headers: { 'X-API-Key': READER } });
    expect(proxied.status).toBe(502);
    analytics = await startAnalytics(port);
    expect((await overview()).benchmark_stats).toMatchObject({ domain: 'benchmark', total_runs: 0 });
    expect(
      (await fetch(`${gw.url}/api/db/benchmark/runs`, { headers: { 'X-API-Key': READER } })).status,
    ).toBe(200);
  } finally {
    await gw.close();
    await analytics.stop().catch(() => undefined);
    tmp.cleanup();
  }
});
