import { connect } from 'node:net';
import request from 'supertest';
import {
  bearerAuth,
  canonicalTarget,
  createServiceApp,
  effectiveMethod,
  isCorsPreflight,
  listen,
  parseJsonStrict,
  serviceRouter,
  silentLogger,
} from '../src';

function build() {
  const base = createServiceApp({
    service: 'edge',
    logger: silentLogger(),
    openapi: { openapi: '3.1.0', info: { title: 'edge', version: '1' }, paths: {} },
  });
  base.app.use(bearerAuth(['tok']));
  const router = serviceRouter();
  router.all('/items/:id', (req, res) => {
    res.json({ method: req.method, id: req.params.id, body: req.body ?? null });
  });
  base.app.use('/v1', router);
  return base.finish();
}
const auth = { Authorization: 'Bearer tok' };

describe('canonicalTarget', () => {
  it('keeps canonical targets and reduces absolute-form to the path', () => {
    for (const t of ['/', '/a/b', '/a/b/', '/a/b?x=1&y=%C3%A9', '/a%20b/c', '/files/abc-DEF_1.2~x'])
      expect(canonicalTarget(t)).toBe(t);
    expect(canonicalTarget('http://host:8080/API/keys?x=1')).toBe('/API/keys?x=1');
    expect(canonicalTarget('https://host')).toBe('/');
  });

  it('refuses every second spelling of a path', () => {
    for (const t of [
      '*',
      'api/keys',
      '//api',
      '/api//keys',
      '/api/./keys',
      '/api/../keys',
      '/api/%2e%2e/keys',
      '/api/.%2E/keys',
      '/api%2Fkeys',
      '/api%5ckeys',
      '/a%00b',
      '/api/%6Beys',
      '/api/k%65ys',
      '/api\\keys',
      '/a#frag',
      '/a b',
      '/a\u0001',
      '/caf\u00e9',
      '/a%zz',
      '/a%C3',
      '/a?x=%FF',
      '/a?x=%E0%80%AF',
    ])
      expect(() => canonicalTarget(t)).toThrow(expect.objectContaining({ status: 400 }));
  });
});

describe('effectiveMethod and preflights', () => {
  it('applies X-HTTP-Method-Override only on POST, to PATCH or DELETE', () => {
    expect(effectiveMethod('GET', {})).toBe('GET');
    expect(effectiveMethod('POST', { 'x-http-method-override': 'patch' })).toBe('PATCH');
    expect(effectiveMethod('POST', { 'x-http-method-override': 'DELETE' })).toBe('DELETE');
    for (const [m, o] of [
      ['GET', 'DELETE'],
      ['OPTIONS', 'POST'],
      ['HEAD', 'PATCH'],
      ['POST', 'GET'],
      ['POST', 'OPTIONS'],
      ['POST', ''],
    ])
      expect(() => effectiveMethod(m!, { 'x-http-method-override': o })).toThrow(
        expect.objectContaining({ status: 400 }),
      );
    expect(() => effectiveMethod('POST', { 'x-http-method-override': ['PATCH', 'DELETE'] })).toThrow();
  });

  it('calls only a bodiless OPTIONS with Origin and Access-Control-Request-Method a preflight', () => {
    const h = { origin: 'https://a.example', 'access-control-request-method': 'PATCH' };
    expect(isCorsPreflight({ method: 'OPTIONS', headers: h })).toBe(true);
    expect(isCorsPreflight({ method: 'OPTIONS', headers: { ...h, 'content-length': '0' } })).toBe(true);
    expect(isCorsPreflight({ method: 'OPTIONS', headers: { ...h, 'content-length': '5' } })).toBe(false);
    expect(isCorsPreflight({ method: 'OPTIONS', headers: { ...h, 'transfer-encoding': 'chunked' } })).toBe(
      false,
    );
    expect(isCorsPreflight({ method: 'OPTIONS', headers: { origin: h.origin } })).toBe(false);
    expect(isCorsPreflight({ method: 'OPTIONS', headers: { 'access-control-request-method': 'GET' } })).toBe(
      false,
    );
    expect(isCorsPreflight({ method: 'POST', headers: h })).toBe(false);
    expect(isCorsPreflight({ method: 'OPTIONS', headers: { ...h, 'x-http-method-override': 'POST' } })).toBe(
      false,
    );
  });
});

describe('a kit app at the edge', () => {
  it('routes case-sensitively and answers problems for non-canonical paths', async () => {
    const app = build();
    await request(app).get('/v1/items/A').set(auth).expect(200, { method: 'GET', id: 'A', body: null });
    const upper = await request(app).get('/V1/items/A').set(auth).expect(404);
    expect(upper.headers['content-type']).toMatch(/problem\+json/);
    const dots = await request(app).get('/v1/x/../items/A').set(auth).expect(400);
    expect(dots.body.code).toBe('NON_CANONICAL_PATH');
  });

  it('needs a key for OPTIONS that is not a preflight, and acts on the overridden method', async () => {
    const app = build();
    await request(app).options('/v1/items/A').expect(401);
    await request(app)
      .options('/v1/items/A')
      .set({ Origin: 'https://a.example', 'Access-Control-Request-Method': 'DELETE' })
      .expect(204);
    await request(app).post('/v1/items/A').set(auth).set('X-HTTP-Method-Override', 'DELETE').expect(200, {
      method: 'DELETE',
      id: 'A',
      body: null,
    });
    await request(app).get('/v1/items/A').set(auth).set('X-HTTP-Method-Override', 'DELETE').expect(400);
  });

  it('refuses JSON that is not UTF-8, too deep, or out of range, and other charsets', async () => {
    const server = await listen(build(), { port: 0, graceMs: 0 });
    // fetch sends the bytes as given (supertest would re-serialise a Buffer as JSON).
    const post = async (body: Uint8Array | string, type = 'application/json') => {
      const res = await fetch(`${server.url}/v1/items/A`, {
        method: 'POST',
        headers: { ...auth, 'Content-Type': type },
        body,
      });
      return { status: res.status, code: ((await res.json()) as { code?: string }).code };
    };
    try {
      expect((await post('{"name":"ok","n":1.5}')).status).toBe(200);
      const invalid = Uint8Array.from([0x7b, 0x22, 0x6e, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]);
      expect(await post(invalid)).toEqual({ status: 400, code: 'INVALID_UTF8' });
      expect(await post(`${'['.repeat(100)}${']'.repeat(100)}`)).toEqual({ status: 400, code: 'TOO_DEEP' });
      expect(await post('{"n":1e400}')).toEqual({ status: 400, code: 'NUMBER_OUT_OF_RANGE' });
      expect(await post('{"n":')).toEqual({ status: 400, code: 'MALFORMED_JSON' });
      expect((await post('"just a string"')).status).toBe(400);
      expect((await post('{"a":1}', 'application/json; charset=latin1')).status).toBe(415);
      // Deep strings are fine: only structure counts.
      expect((await post(JSON.stringify({ s: '['.repeat(1000) }))).status).toBe(200);
      expect(await post('name=%FF%FE', 'application/x-www-form-urlencoded')).toEqual({
        status: 400,
        code: 'INVALID_UTF8',
      });
    } finally {
      await server.close();
    }
  });

  it('answers a refused body at once and cuts the connection when the body does not come', async () => {
    const server = await listen(build(), { port: 0, graceMs: 0 });
    try {
      const answer = await new Promise<string>((resolve, reject) => {
        const s = connect(server.port, '127.0.0.1', () =>
          s.write('POST /v1/items/A HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\nabc'),
        );
        let got = '';
        s.on('data', (d) => {
          got += d.toString();
        });
        s.on('close', () => resolve(got));
        s.on('error', reject);
        s.setTimeout(5000, () => reject(new Error('no answer and no close within 5 s')));
      });
      // The answer came first; the connection was cut after the linger (2 s), not held open.
      expect(answer).toMatch(/^HTTP\/1\.1 401/);
    } finally {
      await server.close();
    }
  });

  it('parseJsonStrict names what is wrong', () => {
    expect(parseJsonStrict('{"a":[1,2]}')).toEqual({ a: [1, 2] });
    expect(() => parseJsonStrict(Buffer.from([0x22, 0xc3, 0x22]))).toThrow(/UTF-8/);
    expect(() => parseJsonStrict('[1e309]', 'line 3')).toThrow(/line 3/);
  });
});
