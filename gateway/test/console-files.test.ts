import { mkdirSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import path from 'node:path';
import { type EmbeddedBroker, startEmbeddedBroker } from '@qlab/events';
import { tempDir } from '@qlab/testkit';
import WebSocket from 'ws';
import { type RunningGateway, startGateway } from './helpers';

const READER = 'console-read-0123456789abc';

function rawStatus(base: string, target: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${base}/`, { path: target }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

/** A console build as Vite lays it out: index.html, hashed assets, a favicon. */
function fakeBuild(dir: string): void {
  mkdirSync(path.join(dir, 'assets'), { recursive: true });
  writeFileSync(
    path.join(dir, 'index.html'),
    '<!doctype html><div id="root"></div><script type="module" src="/assets/index-Ab12Cd34.js"></script>',
  );
  writeFileSync(path.join(dir, 'assets', 'index-Ab12Cd34.js'), 'console.log(1)');
  writeFileSync(path.join(dir, 'favicon.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>');
}

describe('the console at / (files, caching, CSP, deep links)', () => {
  const build = tempDir('qlab-console-');
  let gw: RunningGateway;
  let broker: EmbeddedBroker;
  beforeAll(async () => {
    fakeBuild(build.dir);
    broker = await startEmbeddedBroker({ port: 0 });
    gw = await startGateway({ keys: [[READER, ['read']]], consoleDir: build.dir, mqttUrl: broker.url });
  });
  afterAll(async () => {
    await gw?.close();
    await broker?.close();
    build.cleanup();
  });

  it('serves index.html revalidated, hashed assets cached for a year, both under a strict CSP', async () => {
    const page = await fetch(`${gw.url}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    expect(page.headers.get('cache-control')).toBe('no-cache');
    const csp = page.headers.get('content-security-policy')!;
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toMatch(/unsafe-eval|script-src[^;]*unsafe-inline/);
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    const asset = await fetch(`${gw.url}/assets/index-Ab12Cd34.js`);
    expect(asset.status).toBe(200);
    expect(asset.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(asset.headers.get('content-type')).toMatch(/javascript/);
    const icon = await fetch(`${gw.url}/favicon.svg`);
    expect([icon.status, icon.headers.get('cache-control')]).toEqual([200, 'no-cache']);
  });

  it('answers index.html for page paths (deep links) and leaves the APIs and service pages alone', async () => {
    for (const p of ['/jobs/0f9e-id', '/calibrations/abc123', '/keys', '/quantum?backend=x']) {
      const res = await fetch(`${gw.url}${p}`);
      expect([p, res.status, await res.text()]).toEqual([p, 200, expect.stringContaining('id="root"')]);
    }
    // A missing asset is a 404, not the page (a stale index would otherwise get HTML as script).
    for (const p of ['/assets/index-old.js', '/assets/x', '/assets/index-Ab12Cd34.js/']) {
      const res = await fetch(`${gw.url}${p}`);
      expect([p, res.status, res.headers.get('content-type')]).toEqual([
        p,
        404,
        expect.stringMatching(/problem\+json/),
      ]);
    }
    const api = await fetch(`${gw.url}/api/nothing`, { headers: { 'X-API-Key': READER } });
    expect([api.status, api.headers.get('content-type')]).toEqual([
      404,
      expect.stringMatching(/problem\+json/),
    ]);
    expect((await fetch(`${gw.url}/api/keys/me`)).status).toBe(401);
    // Another case of an API path is not a page either: it stays the 404 it was.
    for (const p of [
      '/API/keys',
      '/Api/db/overview',
      '/DOCS',
      '/api;x=1',
      '/jobs;x=1',
      '/nothing',
      '/Jobs',
      '/ASSETS/index-Ab12Cd34.js',
      '/Assets/index-Ab12Cd34.js',
      '/INDEX.HTML',
    ])
      expect([p, (await fetch(`${gw.url}${p}`)).status]).toEqual([p, 404]);
    expect((await fetch(`${gw.url}/health`)).headers.get('content-type')).toMatch(/json/);
    expect((await fetch(`${gw.url}/openapi.json`)).headers.get('content-type')).toMatch(/json/);
    // Only GET and HEAD draw a page.
    expect((await fetch(`${gw.url}/jobs/x`, { method: 'POST' })).status).toBe(404);
    expect((await fetch(`${gw.url}/jobs/x`, { method: 'HEAD' })).status).toBe(200);
    // Dot segments and encoded slashes are refused before any file is looked up.
    // (node:http sends the target as written; fetch would resolve the dots first.)
    for (const p of ['/assets/../index.html', '/assets/%2e%2e/index.html', '/assets%2findex-Ab12Cd34.js'])
      expect([p, await rawStatus(gw.url, p)]).toEqual([p, 400]);
  });

  it('is absent when the folder holds no build: / is the 404 it always was', async () => {
    const empty = tempDir('qlab-console-empty-');
    const bare = await startGateway({ keys: [], consoleDir: empty.dir });
    try {
      expect((await fetch(`${bare.url}/`)).status).toBe(404);
    } finally {
      await bare.close();
      empty.cleanup();
    }
  });

  it('takes a browser key as a WebSocket subprotocol and answers the protocol `qlab`', async () => {
    const open = (protocols: string[]) =>
      new Promise<{ protocol?: string; status?: number; first?: string }>((resolve) => {
        const s = new WebSocket(`${gw.url.replace('http', 'ws')}/api/events?topic=qlab/%23`, protocols);
        s.on('message', (m) => {
          resolve({ protocol: s.protocol, first: String(m) });
          s.close();
        });
        s.on('unexpected-response', (_q, r) => resolve({ status: r.statusCode }));
        s.on('error', () => resolve({ status: -1 }));
      });
    expect(await open(['qlab', `qlab-key.${READER}`])).toEqual({
      protocol: 'qlab',
      first: expect.stringContaining('"subscribed"'),
    });
    expect(await open(['qlab', 'qlab-key.wrong-wrong-wrong-wrong'])).toEqual({ status: 401 });
    expect(await open(['qlab', 'qlab-key.'])).toEqual({ status: 401 });
    expect(await open(['qlab'])).toEqual({ status: 401 });
  });
});
