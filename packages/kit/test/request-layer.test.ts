import http from 'node:http';
import { Writable } from 'node:stream';
import pino from 'pino';
import request from 'supertest';
import { createServiceApp, listen } from '../src';

/** A kit app whose log lines are kept, with a slow route to abort and a failing /health option. */
function build(opts: { health?: () => Record<string, unknown> } = {}) {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l));
      done();
    },
  });
  const base = createServiceApp({
    service: 'demo',
    logger: pino({ level: 'info' }, sink),
    openapi: { openapi: '3.1.0', info: { title: 'demo', version: '1' }, paths: {} },
    health: opts.health,
  });
  base.app.get('/items/:id', (req, res) => {
    res.json({ id: req.params.id });
  });
  base.app.get('/slow', () => undefined); // never answers: the client gives up
  return { app: base.finish(), lines, metrics: base.metrics };
}

describe('the kit request layer', () => {
  it('answers GET and HEAD /health past Express with the JSON, a request id and CORS headers', async () => {
    const { app, lines } = build({ health: () => ({ queue: 3 }) });
    const res = await request(app).get('/health').set('Origin', 'https://console.example').expect(200);
    expect(res.body).toEqual({ status: 'ok', service: 'demo', queue: 3 });
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(res.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.headers['access-control-allow-origin']).toBe('https://console.example');
    expect(res.headers['access-control-expose-headers']).toContain('X-Request-Id');
    const head = await request(app).head('/health').expect(200);
    expect(head.headers['content-length']).toBe(String(Buffer.byteLength(JSON.stringify(res.body))));
    expect(head.text ?? '').toBe('');
    // A probe is not worth a log line each.
    expect(lines.filter((l) => (l.req as { url?: string })?.url === '/health')).toEqual([]);
  });

  it('routes a probe with a query string through Express, which checks the query', async () => {
    const { app } = build();
    await request(app).get('/health?verbose=1').expect(200);
    const bad = await request(app).get('/health?x=%ZZ').expect(400);
    expect(bad.body.code).toBe('NON_CANONICAL_PATH');
    // Other methods are Express's too: no such route.
    await request(app).post('/health').expect(404);
  });

  it('answers a failing /health with a problem document, not a hang', async () => {
    const { app, lines } = build({
      health: () => {
        throw new Error('publisher gone');
      },
    });
    const res = await request(app).get('/health').expect(500);
    expect(res.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(
      lines.some((l) => l.msg === 'request errored' && (l.res as { status: number }).status === 500),
    ).toBe(true);
  });

  it('echoes a well-formed X-Request-Id, replaces a hostile one, and logs one line per request', async () => {
    const { app, lines } = build();
    const ok = await request(app).get('/items/7').set('X-Request-Id', 'abc.DEF-1_2').expect(200);
    expect(ok.headers['x-request-id']).toBe('abc.DEF-1_2');
    const hostile = await request(app).get('/items/7').set('X-Request-Id', 'a b"<script>').expect(200);
    expect(hostile.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    const long = await request(app).get('/items/7').set('X-Request-Id', 'x'.repeat(129)).expect(200);
    expect(long.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    const line = lines.find((l) => (l.req as { id?: string })?.id === 'abc.DEF-1_2')!;
    expect(line).toMatchObject({
      msg: 'request completed',
      req: { method: 'GET', url: '/items/7' },
      res: { status: 200 },
    });
    expect(typeof line.responseTime).toBe('number');
    expect(JSON.stringify(lines)).not.toContain('authorization');
  });

  it('labels the duration histogram with route patterns, never raw paths', async () => {
    const { app, metrics } = build();
    await request(app).get('/items/1').expect(200);
    await request(app).get('/items/2').expect(200);
    await request(app).get('/health').expect(200);
    await request(app).get('/nowhere/at/all').expect(404);
    const text = await metrics.registry.metrics();
    expect(text).toMatch(
      /http_request_duration_seconds_count\{method="GET",route="\/items\/:id",status="200",service="demo"\} 2/,
    );
    expect(text).toMatch(/route="\/health",status="200"/);
    expect(text).toMatch(/route="unmatched",status="404"/);
    expect(text).not.toContain('/items/1');
    expect(text).not.toContain('/nowhere');
  });

  it('logs a request the client gave up on as aborted, and keeps serving', async () => {
    const { app, lines } = build();
    const server = await listen(app, { port: 0, graceMs: 0 });
    try {
      await new Promise<void>((resolve) => {
        const req = http.get(`${server.url}/slow`);
        req.on('error', () => resolve());
        setTimeout(() => req.destroy(), 100);
      });
      for (let i = 0; i < 50 && !lines.some((l) => l.msg === 'request aborted'); i++)
        await new Promise((r) => setTimeout(r, 20));
      expect(lines.find((l) => l.msg === 'request aborted')).toMatchObject({
        level: 40,
        req: { url: '/slow', remote: '127.0.0.1' },
        res: { status: null },
      });
      expect((await fetch(`${server.url}/health`)).status).toBe(200);
    } finally {
      await server.close();
    }
  });
});

describe('RequestDurations', () => {
  it('exposes a Prometheus histogram: cumulative buckets, +Inf, sum and count per series', async () => {
    const { app, metrics } = build();
    void app;
    metrics.httpDuration.reset();
    metrics.httpDuration.observe('GET', '/x', 200, 0.003);
    metrics.httpDuration.observe('GET', '/x', 200, 0.02);
    metrics.httpDuration.observe('GET', '/x', 200, 100);
    metrics.httpDuration.observe('POST', '/x', 201, 0.005);
    const text = await metrics.registry.metrics();
    const line = (le: string, labels = 'method="GET",route="/x",status="200"') =>
      new RegExp(
        `^http_request_duration_seconds_bucket\\{le="${le.replace('+', '\\+')}",${labels},service="demo"\\} (\\d+)$`,
        'm',
      ).exec(text)?.[1];
    expect([line('0.005'), line('0.025'), line('60'), line('+Inf')]).toEqual(['1', '2', '2', '3']);
    // A value on a bound counts in that bucket (le is "less or equal").
    expect(line('0.005', 'method="POST",route="/x",status="201"')).toBe('1');
    expect(text).toMatch(
      /^http_request_duration_seconds_sum\{method="GET",route="\/x",status="200",service="demo"\} 100\.023$/m,
    );
    expect(text).toMatch(
      /^http_request_duration_seconds_count\{method="GET",route="\/x",status="200",service="demo"\} 3$/m,
    );
    expect(text).toContain('# TYPE http_request_duration_seconds histogram');
  });
});

describe('CORS', () => {
  const appFor = (corsOrigin?: string[] | boolean) => {
    const base = createServiceApp({
      service: 'demo',
      logger: pino({ level: 'silent' }),
      openapi: { openapi: '3.1.0', info: { title: 'demo', version: '1' }, paths: {} },
      corsOrigin,
      corsExposedHeaders: ['Upload-Offset'],
    });
    base.app.patch('/files/1', (_req, res) => {
      res.status(204).end();
    });
    return base.finish();
  };

  it('answers a preflight with the methods, the asked headers and how long to keep it', async () => {
    const res = await request(appFor())
      .options('/files/1')
      .set({
        Origin: 'https://lab.example',
        'Access-Control-Request-Method': 'PATCH',
        'Access-Control-Request-Headers': 'upload-offset,content-type',
      })
      .expect(204);
    expect(res.headers['access-control-allow-origin']).toBe('https://lab.example');
    expect(res.headers['access-control-allow-methods']).toBe('GET,HEAD,PUT,PATCH,POST,DELETE');
    expect(res.headers['access-control-allow-headers']).toBe('upload-offset,content-type');
    expect(res.headers['access-control-max-age']).toBe('600');
    expect(res.headers.vary).toBe('Origin, Access-Control-Request-Headers');
    const real = await request(appFor()).patch('/files/1').set('Origin', 'https://lab.example').expect(204);
    expect(real.headers['access-control-expose-headers']).toBe('Location,ETag,X-Request-Id,Upload-Offset');
    expect(real.headers['access-control-allow-methods']).toBeUndefined();
  });

  it('names no origin outside the list, and none at all when CORS is off', async () => {
    const listed = appFor(['https://lab.example']);
    const other = await request(listed).get('/health').set('Origin', 'https://evil.example').expect(200);
    expect(other.headers['access-control-allow-origin']).toBeUndefined();
    expect(other.headers.vary).toBe('Origin');
    const ok = await request(listed).get('/health').set('Origin', 'https://lab.example').expect(200);
    expect(ok.headers['access-control-allow-origin']).toBe('https://lab.example');
    const off = await request(appFor(false)).get('/health').set('Origin', 'https://lab.example').expect(200);
    expect(off.headers['access-control-allow-origin']).toBeUndefined();
    // Without an Origin (curl, a probe, a service) there is nothing to allow.
    const plain = await request(appFor()).get('/health').expect(200);
    expect(plain.headers['access-control-allow-origin']).toBeUndefined();
  });
});
