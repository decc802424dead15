import request from 'supertest';
import { AppError, bearerAuth, createServiceApp, Lifecycle, listen, silentLogger } from '../src';

function build(opts: { ready?: () => Promise<void>; tokens?: string[] } = {}) {
  const base = createServiceApp({
    service: 'demo',
    logger: silentLogger(),
    openapi: { openapi: '3.1.0', info: { title: 'demo', version: '1' }, paths: {} },
    readiness: opts.ready,
  });
  base.app.use(bearerAuth(opts.tokens ?? []));
  base.app.post('/echo', (req, res) => {
    res.json(req.body);
  });
  base.app.get('/teapot', () => {
    throw new AppError(422, 'TEAPOT', 'short and stout', { spout: true });
  });
  base.app.get('/boom', () => {
    throw new Error('secret internals');
  });
  return base.finish();
}

describe('createServiceApp', () => {
  it('serves health, readiness, metrics, openapi and docs', async () => {
    const app = build();
    const health = await request(app).get('/health').expect(200);
    expect(health.body).toMatchObject({ status: 'ok', service: 'demo' });
    expect(health.headers['x-request-id']).toBeTruthy();
    await request(app).get('/ready').expect(200, { status: 'ready' });
    const metrics = await request(app).get('/metrics').expect(200);
    expect(metrics.text).toContain('http_request_duration_seconds');
    const doc = await request(app).get('/openapi.json').expect(200);
    expect(doc.body.paths['/health']).toBeDefined();
    await request(app).get('/docs/').expect(200).expect('content-type', /html/);
  });

  it('reports not ready as a 503 problem', async () => {
    const app = build({ ready: async () => Promise.reject(new Error('db down')) });
    const res = await request(app).get('/ready').expect(503);
    expect(res.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(res.body.detail).toContain('db down');
  });

  it('turns errors into problem+json with the right status', async () => {
    const app = build();
    const teapot = await request(app).get('/teapot').expect(422);
    expect(teapot.body).toMatchObject({
      status: 422,
      code: 'TEAPOT',
      title: 'Unprocessable Content',
      spout: true,
    });
    const boom = await request(app).get('/boom').expect(500);
    expect(boom.body.detail).toBe('internal server error');
    expect(JSON.stringify(boom.body)).not.toContain('secret');
    const missing = await request(app).get('/nope').expect(404);
    expect(missing.body.code).toBe('NOT_FOUND');
    const bad = await request(app)
      .post('/echo')
      .set('content-type', 'application/json')
      .send('{"a":')
      .expect(400);
    expect(bad.body.code).toBe('MALFORMED_JSON');
    await request(app)
      .post('/echo')
      .set('content-type', 'application/json')
      .send(JSON.stringify({ big: 'x'.repeat(2 * 1024 * 1024) }))
      .expect(413);
  });

  it('checks bearer tokens, leaving health open', async () => {
    const app = build({ tokens: ['t1', 't2'] });
    await request(app).get('/health').expect(200);
    await request(app).post('/echo').send({}).expect(401);
    await request(app).post('/echo').set('authorization', 'Bearer wrong').send({}).expect(401);
    await request(app).post('/echo').set('authorization', 'Bearer t2').send({ a: 1 }).expect(200, { a: 1 });
  });
});

describe('listen and Lifecycle', () => {
  it('listens on port 0 and closes gracefully', async () => {
    const server = await listen(build(), { port: 0 });
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const res = await fetch(`${server.url}/health`);
    expect(res.status).toBe(200);
    await server.close();
    await server.close();
    await expect(fetch(`${server.url}/health`)).rejects.toThrow();
  });

  it('releases in reverse order, once, and reports the first failure', async () => {
    const order: string[] = [];
    const life = new Lifecycle(silentLogger());
    life.add('a', () => order.push('a'));
    life.add('b', () => {
      order.push('b');
      throw new Error('b failed');
    });
    life.add('c', async () => order.push('c'));
    await expect(life.stop()).rejects.toThrow('b failed');
    await expect(life.stop()).rejects.toThrow('b failed');
    expect(order).toEqual(['c', 'b', 'a']);
    expect(() => life.add('d', () => undefined)).toThrow(/already stopping/);
  });
});

describe('a store that is down', () => {
  const appThrowing = (err: unknown) => {
    const base = createServiceApp({
      service: 'demo',
      logger: silentLogger(),
      openapi: { openapi: '3.1.0', info: { title: 'demo', version: '1' }, paths: {} },
    });
    base.app.get('/x', async () => {
      throw err;
    });
    base.finish();
    return base.app;
  };
  const withCode = (message: string, code: string) => Object.assign(new Error(message), { code });

  it('is a 503 with Retry-After, so clients try again, not a 500', async () => {
    for (const err of [
      withCode('connect ECONNREFUSED 127.0.0.1:5432', 'ECONNREFUSED'),
      withCode('terminating connection due to administrator command', '57P01'),
      new Error('Connection terminated unexpectedly'),
      new Error('ROLLBACK - Client has encountered a connection error and is not queryable'),
      withCode('sorry, too many clients already', '53300'),
      withCode('getaddrinfo EAI_AGAIN postgres', 'EAI_AGAIN'),
      new Error('insert failed', { cause: withCode('read ECONNRESET', 'ECONNRESET') }),
    ]) {
      const res = await request(appThrowing(err)).get('/x');
      expect([err.message, res.status]).toEqual([err.message, 503]);
      expect(res.headers['retry-after']).toBe('5');
      expect(res.body.code).toBe('STORE_UNAVAILABLE');
    }
  });

  it('is a 507 when the disk is full', async () => {
    const res = await request(appThrowing(withCode('ENOSPC: no space left on device, write', 'ENOSPC'))).get(
      '/x',
    );
    expect(res.status).toBe(507);
    expect(res.body.code).toBe('INSUFFICIENT_STORAGE');
  });

  it('leaves a bug a 500, also one that looks like an outage', async () => {
    for (const err of [
      new TypeError("Cannot read properties of undefined (reading 'x')"),
      // A connection leak fills the pool: a bug, not an outage.
      new Error('Knex: Timeout acquiring a connection. The pool is probably full.'),
      // Another service misconfigured (its URL), not a store of ours down.
      new TypeError('fetch failed', { cause: withCode('connect ECONNREFUSED 127.0.0.1:1', 'ECONNREFUSED') }),
    ]) {
      const res = await request(appThrowing(err)).get('/x');
      expect([err.message, res.status]).toEqual([err.message, 500]);
      expect(res.body.code).toBe('INTERNAL');
    }
  });

  it('is a 507 for every way a disk says it is full', async () => {
    for (const err of [withCode('disk full', '53100'), withCode('database or disk is full', 'SQLITE_FULL')]) {
      const res = await request(appThrowing(err)).get('/x');
      expect([err.message, res.status]).toEqual([err.message, 507]);
    }
  });
});
