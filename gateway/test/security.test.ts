import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect, type Socket } from 'node:net';
import { waitFor } from '@qlab/testkit';
import { GATEWAY_TOKEN, type RunningUploads, startUploads } from 'chunked-upload/testing';
import WebSocket, { WebSocketServer } from 'ws';
import { type RunningGateway, startGateway } from './helpers';

const ADMIN = 'sec-admin-0123456789abcdef';
const WRITER = 'sec-write-0123456789abcdef';
const READER = 'sec-read-0123456789abcdefg';

/** A stand-in upstream that records what reached it: headers, and WebSocket sockets (open now). */
async function recordingUpstream() {
  const seen: { url: string; headers: IncomingHttpHeaders }[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    seen.push({ url: req.url ?? '', headers: req.headers });
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"ok":true}');
  });
  const wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req, socket, head) => {
    sockets.add(socket as Socket);
    socket.on('close', () => sockets.delete(socket as Socket));
    seen.push({ url: req.url ?? '', headers: req.headers });
    wss.handleUpgrade(req, socket, head, (ws) => ws.send('{"type":"welcome"}'));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    sockets,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** One raw HTTP request (for request targets fetch cannot send); resolves with the status line's code. */
function rawRequest(port: number, text: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => s.write(text));
    let got = '';
    s.on('data', (d) => {
      got += d.toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(got);
      if (m) {
        resolve(Number(m[1]));
        s.destroy();
      }
    });
    s.on('error', reject);
    s.setTimeout(5000, () => reject(new Error(`no answer to ${text.split('\r\n')[0]}`)));
  });
}

describe('gateway: scope on the canonical path and the effective method', () => {
  let gw: RunningGateway;
  let upstream: Awaited<ReturnType<typeof recordingUpstream>>;
  let uploads: RunningUploads;

  beforeAll(async () => {
    upstream = await recordingUpstream();
    uploads = await startUploads({ encryption: {} });
    gw = await startGateway({
      keys: [
        [ADMIN, ['read', 'write', 'admin']],
        [WRITER, ['read', 'write']],
        [READER, ['read']],
      ],
      services: {
        'calibration-store': { url: upstream.url, token: 'store-token' },
        'quantum-tracker': { url: upstream.url, token: 'tracker-token' },
        'chunked-upload': { url: uploads.url, token: GATEWAY_TOKEN },
        'job-worker': { url: upstream.url, token: 'jobs-token' },
      },
    });
  });

  test("a mount's own path with a query reaches the service's list (GET /api/jobs?status=error)", async () => {
    upstream.seen.length = 0;
    for (const p of ['/api/jobs?status=error&limit=5', '/api/jobs', '/api/jobs/?x=1'])
      expect([p, (await call(p, READER)).status]).toEqual([p, 200]);
    expect(upstream.seen.map((s) => s.url)).toEqual(['/jobs?status=error&limit=5', '/jobs', '/jobs?x=1']);
  });
  afterAll(async () => {
    await gw.close();
    await uploads.close();
    await upstream.close();
  });

  const call = (p: string, key: string | undefined, init: RequestInit = {}) =>
    fetch(`${gw.url}${p}`, {
      ...init,
      headers: { ...(key ? { 'X-API-Key': key } : {}), ...(init.headers as Record<string, string>) },
    });

  test('no spelling of /api/keys lets a write or read key list, mint or revoke keys', async () => {
    const mint = JSON.stringify({ name: 'evil', scopes: ['read', 'write', 'admin'] });
    const variants = [
      '/api/keys',
      '/API/keys',
      '/api/KEYS',
      '/Api/Keys',
      '/api/keys/',
      '/api/./keys',
      '/api/x/../keys',
      '//api/keys',
      '/api//keys',
      '/api/%6beys',
      '/api%2fkeys',
    ];
    for (const key of [WRITER, READER]) {
      for (const p of variants) {
        for (const method of ['GET', 'HEAD', 'POST']) {
          const res = await call(p, key, {
            method,
            headers: { 'content-type': 'application/json' },
            body: method === 'POST' ? mint : undefined,
          });
          expect([p, method, res.status < 300]).toEqual([p, method, false]);
          expect([p, method, [400, 403, 404].includes(res.status)]).toEqual([p, method, true]);
        }
      }
    }
    const port = new URL(gw.url).port;
    for (const target of ['http://host/API/keys', 'http://host/api/keys', 'http://host/api/KEYS'])
      expect(
        await rawRequest(Number(port), `GET ${target} HTTP/1.1\r\nHost: x\r\nX-API-Key: ${READER}\r\n\r\n`),
      ).not.toBe(200);
    // The one spelling works for an admin key, and nothing was minted above.
    const list = await call('/api/keys', ADMIN);
    expect(list.status).toBe(200);
    const names = ((await list.json()) as { keys: { name: string }[] }).keys.map((k) => k.name);
    expect(names).not.toContain('evil');
    expect((await call('/api/keys/', ADMIN)).status).toBe(200);
  });

  test('only an admin key rotates the upload encryption keys, however the path is spelled', async () => {
    const before = ((await (await call('/api/uploads/public-key', READER)).json()) as { kid: string }).kid;
    for (const key of [WRITER, READER]) {
      for (const p of [
        '/api/uploads/rotate-keys',
        '/api/uploads/rotate-keys/',
        '/api/uploads/./rotate-keys',
        '/api/uploads/x/../rotate-keys',
        '/api/uploads//rotate-keys',
      ]) {
        for (const override of [undefined, 'POST']) {
          const res = await call(p, key, {
            method: 'POST',
            headers: override ? { 'X-HTTP-Method-Override': override } : {},
          });
          expect([key, p, res.status < 300]).toEqual([key, p, false]);
        }
      }
    }
    expect(((await (await call('/api/uploads/public-key', READER)).json()) as { kid: string }).kid).toBe(
      before,
    );
    const rotated = await call('/api/uploads/rotate-keys', ADMIN, { method: 'POST' });
    expect(rotated.status).toBe(200);
    expect(((await rotated.json()) as { newKeyId: string }).newKeyId).not.toBe(before);
    // Uploading encrypted packets is a write.
    expect((await call('/api/uploads/upload-encrypted', READER, { method: 'POST' })).status).toBe(403);
  });

  test('key names must be UTF-8, and key bodies strict', async () => {
    const mint = (body: Uint8Array | string) =>
      call('/api/keys', ADMIN, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    const bad = Uint8Array.from([
      ...Buffer.from('{"name":"'),
      0xff,
      0xfe,
      ...Buffer.from('","scopes":["read"]}'),
    ]);
    const res = await mint(bad);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { code: string }).code).toBe('INVALID_UTF8');
    expect((await mint('{"name":"x","scopes":["read"],"extra":1}')).status).toBe(400);
    expect((await mint('{"name":"x","scopes":["root"]}')).status).toBe(400);
    expect((await mint(`{"name":"${'x'.repeat(20_000)}"}`)).status).toBe(413);
    const names = ((await (await call('/api/keys', ADMIN)).json()) as { keys: { name: string }[] }).keys;
    expect(names.some((k) => k.name.includes('\ufffd'))).toBe(false);
  });

  test('a method override is judged as the method it asks for, and only POST may carry one', async () => {
    const created = await call('/api/uploads/files', WRITER, {
      method: 'POST',
      headers: { 'Tus-Resumable': '1.0.0', 'Upload-Length': '4' },
    });
    expect(created.status).toBe(201);
    const id = created.headers.get('location')!.split('/').pop()!;
    const file = `/api/uploads/files/${id}`;
    const tus = { 'Tus-Resumable': '1.0.0' };
    // A read key: GET/HEAD with an override are refused (400); POST with one needs write (403).
    for (const [method, override] of [
      ['GET', 'DELETE'],
      ['GET', 'PATCH'],
      ['HEAD', 'DELETE'],
      ['POST', 'DELETE'],
      ['POST', 'PATCH'],
    ]) {
      const res = await call(file, READER, {
        method,
        headers: {
          ...tus,
          'X-HTTP-Method-Override': override!,
          'Upload-Offset': '0',
          'Content-Type': 'application/offset+octet-stream',
        },
        body: method === 'POST' ? 'evil' : undefined,
      });
      expect([method, override, res.status]).toEqual([method, override, method === 'POST' ? 403 : 400]);
    }
    // The writer's upload is intact, and the writer may use the override.
    const head = await call(file, WRITER, { method: 'HEAD', headers: tus });
    expect(head.status).toBe(200);
    expect(head.headers.get('upload-offset')).toBe('0');
    expect(
      (await call(file, WRITER, { method: 'POST', headers: { ...tus, 'X-HTTP-Method-Override': 'DELETE' } }))
        .status,
    ).toBe(204);
  });

  test('uploads belong to the key that made them, also through the gateway', async () => {
    const created = await call('/api/uploads/files', WRITER, {
      method: 'POST',
      headers: { 'Tus-Resumable': '1.0.0', 'Upload-Length': '4' },
    });
    const file = `/api/uploads/files/${created.headers.get('location')!.split('/').pop()}`;
    const tus = { 'Tus-Resumable': '1.0.0' };
    expect((await call(file, WRITER, { method: 'HEAD', headers: tus })).status).toBe(200);
    // The admin key is another caller: it neither sees nor deletes the writer's upload.
    expect((await call(file, ADMIN, { method: 'HEAD', headers: tus })).status).toBe(404);
    expect((await call(file, ADMIN, { method: 'DELETE', headers: tus })).status).toBe(404);
    // A caller cannot pose as another key with X-Qlab-Key-Id: the gateway replaces it.
    const writerId = (await gw.keys.list()).find(
      (k) => k.name.includes('read+write') && !k.name.includes('admin'),
    )!;
    expect(
      (await call(file, ADMIN, { method: 'HEAD', headers: { ...tus, 'X-Qlab-Key-Id': writerId.id } })).status,
    ).toBe(404);
  });

  test('the caller’s key never reaches a service, in any form; its key id and scopes do', async () => {
    upstream.seen.length = 0;
    await call('/api/store/calibrations/list', undefined, {
      headers: {
        Authorization: `Bearer ${READER}`,
        'X-API-Key': '',
        'X-Qlab-Key-Id': 'ffffffffffffffff',
        'X-Qlab-Key-Scopes': 'read,write,admin',
      },
    });
    await call('/api/store/calibrations/list', READER, { headers: { Authorization: `Bearer ${READER}` } });
    // Expect: 100-continue makes Node send the outgoing headers at once: they must be right already.
    const { request } = await import('node:http');
    await new Promise<void>((resolve, reject) => {
      const r = request(
        `${gw.url}/api/store/upload`,
        {
          method: 'POST',
          headers: { 'X-API-Key': WRITER, 'X-Qlab-Key-Id': 'ffffffffffffffff', Expect: '100-continue' },
        },
        (res) => {
          res.resume();
          res.on('end', resolve);
        },
      );
      r.on('error', reject);
      r.on('continue', () => r.end('abc'));
    });
    expect(upstream.seen).toHaveLength(3);
    const keys = await gw.keys.list();
    const idOf = (name: string) => keys.find((k) => k.name === name)!.id;
    upstream.seen.forEach(({ headers }, i) => {
      expect(JSON.stringify(headers)).not.toContain(READER);
      expect(JSON.stringify(headers)).not.toContain(WRITER);
      expect(headers['x-api-key']).toBeUndefined();
      expect(headers.authorization).toBe('Bearer store-token');
      expect(headers['x-qlab-key-id']).toBe(idOf(i < 2 ? 'test read' : 'test read+write'));
      // Its scopes come from the gateway, never from the caller (services judge admin by them).
      expect(headers['x-qlab-key-scopes']).toBe(i < 2 ? 'read' : 'read,write');
      expect(headers['x-forwarded-prefix']).toBe('/api/store');
    });
  });

  test('REST, then a WebSocket, then an unauthenticated upgrade: each judged by the gateway alone', async () => {
    // A REST call first: before the fix, the proxy then hooked its own (unauthenticated) upgrade listener.
    expect((await call('/api/v1/jobs', READER)).status).toBe(200);
    upstream.seen.length = 0;
    const ws = `${gw.url.replace('http', 'ws')}/api/v1/ws/queue`;
    const welcome = await new Promise<string>((resolve, reject) => {
      const s = new WebSocket(`${ws}?api_key=${READER}&x=1`);
      s.on('message', (m) => {
        resolve(String(m));
        s.close();
      });
      s.on('error', reject);
    });
    expect(welcome).toContain('welcome');
    // The upstream saw the tracker's own path, its token, and neither the key nor the prefix twice.
    expect(upstream.seen[0]!.url).toBe('/api/v1/ws/queue?x=1');
    expect(upstream.seen[0]!.headers.authorization).toBe('Bearer tracker-token');
    await waitFor(() => upstream.sockets.size === 0);
    upstream.seen.length = 0;

    for (const target of [
      '/api/v1/ws/queue',
      '/api/v1/ws/queue?api_key=wrong-wrong-wrong',
      '/api/v1/jobs',
      '/x',
    ]) {
      const status = await new Promise<number>((resolve) => {
        const s = new WebSocket(`${gw.url.replace('http', 'ws')}${target}`);
        s.on('unexpected-response', (_q, r) => resolve(r.statusCode ?? 0));
        s.on('error', () => resolve(-1));
      });
      expect([target, status]).toEqual([target, target.startsWith('/api/v1/ws') ? 401 : 404]);
    }
    // Nothing reached the upstream, and no socket to it was left open.
    expect(upstream.seen).toHaveLength(0);
    expect(upstream.sockets.size).toBe(0);
  });
});
