import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { UPSTREAMS, type UpstreamId } from '../src/config';
import { type RunningGateway, startGateway } from './helpers';

const KEY = 'r'.repeat(24);

/** One fake for every service: answers `{total: 1}` to anything, after `hold` says so. */
async function fakeServices(hold: (pending: number) => boolean) {
  const waiting: ServerResponse[] = [];
  const seen: string[] = [];
  const answer = (res: ServerResponse) =>
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"total":1}');
  const server: Server = createServer((req: IncomingMessage, res) => {
    seen.push(req.url ?? '');
    waiting.push(res);
    if (!hold(waiting.length)) for (const r of waiting.splice(0)) answer(r);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const services = Object.fromEntries(UPSTREAMS.map((u) => [u.id, { url }])) as Record<
    UpstreamId,
    { url: string }
  >;
  return {
    services,
    seen,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

describe('cross-service views', () => {
  let gw: RunningGateway | undefined;
  let fake: Awaited<ReturnType<typeof fakeServices>> | undefined;
  afterEach(async () => {
    await gw?.close();
    await fake?.close();
    gw = undefined;
    fake = undefined;
  });

  it('ask every service at once: none waits for another to answer', async () => {
    // The overview reads 8 documents. Nobody answers until all 8 were asked for, so a view that
    // awaited some services before asking the rest would see the first ones time out.
    fake = await fakeServices((pending) => pending < 8);
    gw = await startGateway({ keys: [[KEY, ['read']]], services: fake.services, aggregateTimeoutMs: 3000 });
    const res = await fetch(`${gw.url}/api/db/overview`, { headers: { 'X-API-Key': KEY } });
    const body = (await res.json()) as { completed: boolean; missing_services: string[] };
    expect(res.status).toBe(200);
    expect(body.missing_services).toEqual([]);
    expect(body.completed).toBe(true);
    expect(fake.seen).toHaveLength(8);
  });

  it('leave out what the --config file disabled, without calling the answer incomplete', async () => {
    fake = await fakeServices(() => false);
    const disabled: UpstreamId[] = ['analytics-test', 'analytics-generator', 'analytics-benchmark'];
    gw = await startGateway({ keys: [[KEY, ['read']]], services: fake.services, disabled });
    const get = (path: string) => fetch(`${gw!.url}${path}`, { headers: { 'X-API-Key': KEY } });

    const overview = await get('/api/db/overview');
    expect(overview.headers.get('x-gateway-completed')).toBe('true');
    expect(await overview.json()).toMatchObject({
      completed: true,
      missing_services: [],
      errors: {},
      disabled_services: disabled,
    });
    expect(fake.seen.some((u) => u.startsWith('/api/test/'))).toBe(false);

    // The model view reads only the analytics domains: all disabled is a 503, not a 502.
    const model = await get('/api/db/model/m1');
    expect(model.status).toBe(503);
    expect(model.headers.get('content-type')).toContain('application/problem+json');
    expect(await model.json()).toMatchObject({ code: 'SERVICE_DISABLED' });

    const health = (await (await fetch(`${gw.url}/health`)).json()) as {
      services: Record<string, string>;
      all_services_up: boolean;
    };
    expect(health.services['analytics-test']).toBe('disabled');
    expect(health.services['job-worker']).toBe('ok');
    expect(health.all_services_up).toBe(true);
  });
});
