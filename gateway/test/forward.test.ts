import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import net from 'node:net';
import { Forwarder } from '../src/forward';
import { startGateway } from './helpers';

const KEY = 'forward-test-key-0123456789ab';

/** A service that runs `handle` and remembers every request's headers. */
async function service(handle: (req: IncomingMessage, res: ServerResponse) => void) {
  const seen: IncomingMessage[] = [];
  const server = http.createServer((req, res) => {
    seen.push(req);
    handle(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    seen,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

/** One raw HTTP/1.1 exchange: what a client that sends anything it likes gets back. */
function raw(url: string, text: string): Promise<string> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const s = net.connect(Number(u.port), u.hostname, () => s.write(text));
    let got = '';
    s.on('data', (d) => {
      got += d.toString('latin1');
    });
    s.on('end', () => resolve(got));
    s.on('error', reject);
    setTimeout(() => {
      s.destroy();
      resolve(got);
    }, 1500);
  });
}

const until = async (ok: () => boolean) => {
  for (let i = 0; i < 200 && !ok(); i++) await new Promise((r) => setTimeout(r, 10));
  return ok();
};

describe('forwarding to a service (undici)', () => {
  it('drops hop-by-hop fields and those the caller names in Connection, never what the gateway sets', async () => {
    const svc = await service((_req, res) => {
      res.setHeader('Keep-Alive', 'timeout=5');
      res.setHeader('Connection', 'x-internal');
      res.setHeader('X-Internal', 'hop');
      res.setHeader('Set-Cookie', ['a=1', 'b=2']);
      res.end('ok');
    });
    const gw = await startGateway({
      keys: [[KEY, ['read', 'write']]],
      services: { 'calibration-store': { url: svc.url, token: 'svc-token' } },
    });
    try {
      const answer = await raw(
        gw.url,
        'POST /api/store/health HTTP/1.1\r\nHost: lab.example:8443\r\nContent-Length: 0\r\n' +
          `X-API-Key: ${KEY}\r\n` +
          'Connection: keep-alive, x-custom, x-qlab-key-id, authorization, x-forwarded-prefix, host, x-http-method-override\r\n' +
          'X-HTTP-Method-Override: DELETE\r\n' +
          'X-Custom: secret-for-this-hop\r\nTE: trailers\r\nTrailer: x-t\r\nProxy-Authorization: Basic eA==\r\n' +
          'X-Forwarded-For: 203.0.113.9\r\nX-Qlab-Key-Id: forged\r\n\r\n',
      );
      expect(answer).toMatch(/^HTTP\/1\.1 200 /);
      const h = svc.seen[0]!.headers;
      expect(h['x-custom']).toBeUndefined();
      expect(h.te).toBeUndefined();
      expect(h.trailer).toBeUndefined();
      expect(h['proxy-authorization']).toBeUndefined();
      expect(h['x-api-key']).toBeUndefined();
      // What the gateway tells the service stays, whatever Connection says.
      expect(h.authorization).toBe('Bearer svc-token');
      expect(h['x-qlab-key-id']).toMatch(/^[0-9a-f]{16}$/);
      expect(h['x-qlab-key-id']).not.toBe('forged');
      expect(h['x-forwarded-prefix']).toBe('/api/store');
      // The scope was judged on the overridden method: the service must act on that one too.
      expect(h['x-http-method-override']).toBe('DELETE');
      expect(h.host).toBe(new URL(svc.url).host);
      expect(h['x-forwarded-host']).toBe('lab.example:8443');
      expect(h['x-forwarded-port']).toBe('8443');
      expect(h['x-forwarded-proto']).toBe('http');
      expect(h['x-forwarded-for']).toBe('203.0.113.9,127.0.0.1');
      // And back: the service's hop-by-hop fields stop here; repeated fields stay repeated.
      expect(answer).not.toMatch(/x-internal/i);
      expect(answer).not.toMatch(/timeout=5/);
      expect(answer.match(/^set-cookie: /gim)).toHaveLength(2);
    } finally {
      await gw.close();
      svc.close();
    }
  });

  it('stops the service request when the caller leaves mid-download, and keeps serving', async () => {
    let ended = false;
    const svc = await service((req, res) => {
      if (req.url === '/health') return void res.end('{}');
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const chunk = Buffer.alloc(64 * 1024, 1);
      const timer = setInterval(() => res.write(chunk), 5);
      res.on('close', () => {
        clearInterval(timer);
        ended = true;
      });
    });
    const gw = await startGateway({
      keys: [[KEY, ['read']]],
      services: { 'calibration-store': { url: svc.url } },
    });
    try {
      await new Promise<void>((resolve, reject) => {
        const req = http.get(`${gw.url}/api/store/archives/x/download`, { headers: { 'X-API-Key': KEY } });
        req.on('response', (res) => {
          res.once('data', () => {
            req.destroy();
            resolve();
          });
        });
        req.on('error', reject);
      });
      expect(await until(() => ended)).toBe(true);
      const again = await fetch(`${gw.url}/api/store/health`, { headers: { 'X-API-Key': KEY } });
      expect(again.status).toBe(200);
    } finally {
      await gw.close();
      svc.close();
    }
  });

  it('holds a slow reader back at the service instead of buffering the answer', async () => {
    let written = 0;
    let done = false;
    const svc = await service((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const chunk = Buffer.alloc(1024 * 1024, 2);
      const pump = () => {
        while (written < 256 * 1024 * 1024) {
          written += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        done = true;
        res.end();
      };
      pump();
    });
    const gw = await startGateway({
      keys: [[KEY, ['read']]],
      services: { 'calibration-store': { url: svc.url } },
    });
    try {
      const received = await new Promise<number>((resolve, reject) => {
        const req = http.get(`${gw.url}/api/store/archives/big/download`, { headers: { 'X-API-Key': KEY } });
        req.on('response', (res) => {
          res.pause();
          // Nothing read for a second: what the service got out is what the buffers hold.
          setTimeout(() => {
            const heldBack = written;
            let got = 0;
            res.on('data', (d: Buffer) => {
              got += d.length;
            });
            res.on('end', () => resolve(heldBack === 0 ? -1 : got));
            res.resume();
            expect(heldBack).toBeLessThan(64 * 1024 * 1024);
            expect(done).toBe(false);
          }, 1000);
        });
        req.on('error', reject);
      });
      expect(received).toBe(256 * 1024 * 1024);
    } finally {
      await gw.close();
      svc.close();
    }
  });

  it('stops the service request when the caller leaves mid-upload', async () => {
    let aborted = false;
    const svc = await service((req, res) => {
      req.on('error', () => undefined);
      req.on('close', () => {
        if (!req.complete) aborted = true;
      });
      req.resume();
      req.on('end', () => res.end('{}'));
    });
    const gw = await startGateway({
      keys: [[KEY, ['read', 'write']]],
      services: { 'chunked-upload': { url: svc.url } },
    });
    try {
      const req = http.request(`${gw.url}/api/uploads/files/abc`, {
        method: 'PATCH',
        headers: { 'X-API-Key': KEY, 'Content-Length': String(64 * 1024 * 1024) },
      });
      req.on('error', () => undefined);
      req.write(Buffer.alloc(1024 * 1024, 3));
      expect(await until(() => svc.seen.length === 1)).toBe(true);
      req.destroy();
      expect(await until(() => aborted)).toBe(true);
    } finally {
      await gw.close();
      svc.close();
    }
  });

  it('answers every one of more concurrent calls than the pool has connections', async () => {
    const svc = await service((_req, res) => {
      setTimeout(() => res.end('{"ok":true}'), 20);
    });
    const gw = await startGateway({
      keys: [[KEY, ['read']]],
      services: { 'calibration-store': { url: svc.url } },
    });
    try {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 400 });
      const one = () =>
        new Promise<number>((resolve, reject) => {
          http
            .get(`${gw.url}/api/store/health`, { agent, headers: { 'X-API-Key': KEY } }, (res) => {
              res.resume();
              res.on('end', () => resolve(res.statusCode ?? 0));
            })
            .on('error', reject);
        });
      const statuses = await Promise.all(Array.from({ length: 400 }, one));
      expect(statuses.every((s) => s === 200)).toBe(true);
      agent.destroy();
    } finally {
      await gw.close();
      svc.close();
    }
  });

  it('passes a 304 that carries the Content-Length of the full answer (RFC 9110 8.6)', async () => {
    const svc = await service((_req, res) => {
      res.writeHead(304, { ETag: '"v1"', 'Content-Length': '5' });
      res.end();
    });
    const gw = await startGateway({
      keys: [[KEY, ['read']]],
      services: { 'calibration-store': { url: svc.url } },
    });
    try {
      const r = await fetch(`${gw.url}/api/store/archives/1/archive`, {
        headers: { 'X-API-Key': KEY, 'If-None-Match': '"v1"' },
      });
      expect(r.status).toBe(304);
      expect(r.headers.get('etag')).toBe('"v1"');
    } finally {
      await gw.close();
      svc.close();
    }
  });

  it('survives a slow reader of answers after which the service closes its connection', async () => {
    // undici 7 ends the process if such a connection ends while its parser is paused
    // (nodejs/undici#5360): these answers are buffered (up to 8 MiB), never paused.
    const svc = await service((req, res) => {
      const size = Number(new URL(req.url!, 'http://x').searchParams.get('mb')) * 1024 * 1024;
      res.writeHead(200, { 'Content-Length': String(size), Connection: 'close' });
      res.end(Buffer.alloc(size, 5));
    });
    const gw = await startGateway({
      keys: [[KEY, ['read']]],
      services: { 'calibration-store': { url: svc.url } },
    });
    const slowRead = (mb: number, waitMs: number) =>
      new Promise<number>((resolve) => {
        const req = http.get(`${gw.url}/api/store/x?mb=${mb}`, { headers: { 'X-API-Key': KEY } }, (res) => {
          res.pause();
          let got = 0;
          setTimeout(() => {
            res.on('data', (d: Buffer) => {
              got += d.length;
            });
            res.on('end', () => resolve(got));
            res.on('error', () => resolve(got));
            res.on('aborted', () => resolve(got));
            res.resume();
          }, waitMs);
        });
        req.on('error', () => resolve(-1));
      });
    try {
      // Within the buffer: the whole answer arrives, however late it is read.
      expect(await slowRead(4, 800)).toBe(4 * 1024 * 1024);
      // Past it: the caller is cut, the gateway goes on.
      expect(await slowRead(48, 1500)).toBeLessThan(48 * 1024 * 1024);
      const again = await fetch(`${gw.url}/api/store/x?mb=1`, { headers: { 'X-API-Key': KEY } });
      expect((await again.arrayBuffer()).byteLength).toBe(1024 * 1024);
    } finally {
      await gw.close();
      svc.close();
    }
  });
});

describe('Forwarder', () => {
  it('sends nothing on for a caller that left before its turn (a slow key check)', async () => {
    const svc = await service((_req, res) => res.end('{}'));
    const f = new Forwarder(svc.url);
    const front = http.createServer((req, res) => {
      // What a key check that takes a while (Redis) looks like to the forwarder.
      setTimeout(() => f.forward(req, res, '/x', undefined, () => res.destroy()), 100);
    });
    await new Promise<void>((r) => front.listen(0, '127.0.0.1', r));
    const port = (front.address() as net.AddressInfo).port;
    try {
      for (let i = 0; i < 20; i++) {
        const s = net.connect(port, '127.0.0.1', () => {
          s.write('POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\nabc');
          s.destroy();
        });
        s.on('error', () => undefined);
      }
      await new Promise((r) => setTimeout(r, 400));
      expect(svc.seen).toHaveLength(0);
      // Nothing is held for them either (a request waiting for a body that never ends would hold
      // its pooled connection until the service timed it out).
      const stats = (f as unknown as { pool: { stats: { running: number; pending: number } } }).pool.stats;
      expect([stats.running, stats.pending]).toEqual([0, 0]);
      // And the forwarder still serves the living.
      const ok = await fetch(`http://127.0.0.1:${port}/x`);
      expect(ok.status).toBe(200);
    } finally {
      front.close();
      await f.close();
      svc.close();
    }
  });

  /** A raw service: answers every request with `head` + `size` bytes, then ends the connection. */
  async function rawService(head: (size: number) => string, size: number) {
    const server = net.createServer((sock) => {
      sock.on('error', () => undefined);
      sock.once('data', () => {
        sock.write(head(size));
        sock.end(Buffer.alloc(size, 7));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return { port: (server.address() as net.AddressInfo).port, close: () => server.close() };
  }

  it('never pauses (and so never crashes on) answers undici 7 cannot pause safely', async () => {
    const size = 3 * 1024 * 1024;
    const kinds: Record<string, (n: number) => string> = {
      'HTTP/1.0 with a length': (n) => `HTTP/1.0 200 OK\r\nContent-Length: ${n}\r\n\r\n`,
      'Proxy-Connection: close': (n) =>
        `HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nProxy-Connection: close\r\nContent-Length: ${n}\r\n\r\n`,
      'keep-alive, closed right after': (n) =>
        `HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: ${n}\r\n\r\n`,
    };
    for (const [kind, head] of Object.entries(kinds)) {
      const svc = await rawService(head, size);
      const f = new Forwarder(`http://127.0.0.1:${svc.port}`);
      const front = http.createServer((req, res) =>
        f.forward(req, res, '/x', undefined, () => res.destroy()),
      );
      await new Promise<void>((r) => front.listen(0, '127.0.0.1', r));
      try {
        const got = await new Promise<number>((resolve) => {
          const req = http.get(`http://127.0.0.1:${(front.address() as net.AddressInfo).port}/x`, (res) => {
            res.pause();
            let n = 0;
            setTimeout(() => {
              res.on('data', (d: Buffer) => {
                n += d.length;
              });
              res.on('end', () => resolve(n));
              res.on('error', () => resolve(n));
              res.resume();
            }, 1000);
          });
          req.on('error', () => resolve(-1));
        });
        // The whole answer, late: the process is still here to count it.
        expect([kind, got]).toEqual([kind, size]);
      } finally {
        front.close();
        await f.close();
        svc.close();
      }
    }
  });

  it('lets go of pipelined requests whose caller left', async () => {
    let released = 0;
    const svc = await service((req, res) => {
      req.socket.once('close', () => released++);
      if (req.url === '/slow') return void setTimeout(() => res.end('slow'), 1000);
      res.writeHead(200, { 'Content-Length': String(4 * 1024 * 1024) });
      res.end(Buffer.alloc(4 * 1024 * 1024, 1));
    });
    const f = new Forwarder(svc.url);
    const front = http.createServer((req, res) =>
      f.forward(req, res, req.url ?? '/', undefined, () => res.destroy()),
    );
    await new Promise<void>((r) => front.listen(0, '127.0.0.1', r));
    try {
      const s = net.connect((front.address() as net.AddressInfo).port, '127.0.0.1', () =>
        s.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /big HTTP/1.1\r\nHost: x\r\n\r\n'),
      );
      s.on('error', () => undefined);
      await until(() => svc.seen.length === 2);
      await new Promise((r) => setTimeout(r, 100));
      s.destroy();
      // Both service connections are let go of at once (the queued answer's too), long before
      // the slow one would have answered.
      expect(await until(() => released === 2)).toBe(true);
    } finally {
      front.close();
      await f.close();
      svc.close();
    }
  });
});
