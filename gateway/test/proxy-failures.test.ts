import net from 'node:net';
import { startGateway } from './helpers';

const ADMIN = 'proxy-failures-admin-0123456789';

/** A "service" that takes the connection and `then` does something bad with it. */
async function badService(behave: (socket: net.Socket) => void) {
  const sockets: net.Socket[] = [];
  const server = net.createServer((s) => {
    sockets.push(s);
    s.on('error', () => undefined);
    behave(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

describe('what the gateway answers for a service that fails', () => {
  it('502 when the service resets mid-request, 504 only when its timeout passed', async () => {
    // Reads a little of the request, then resets: the service died.
    const dying = await badService((s) => s.once('data', () => s.resetAndDestroy()));
    // Never answers.
    const silent = await badService(() => undefined);
    const gw = await startGateway({
      keys: [[ADMIN, ['read', 'write', 'admin']]],
      services: { 'chunked-upload': { url: dying.url }, 'quantum-tracker': { url: silent.url } },
      proxyTimeoutMs: 500,
    });
    try {
      const headers = { 'X-API-Key': ADMIN };
      const died = await fetch(`${gw.url}/api/uploads/files`, { method: 'POST', headers });
      expect([died.status, ((await died.json()) as { code: string }).code]).toEqual([502, 'UPSTREAM_DOWN']);
      const slow = await fetch(`${gw.url}/api/v1/backends`, { headers });
      expect([slow.status, ((await slow.json()) as { code: string }).code]).toEqual([
        504,
        'UPSTREAM_TIMEOUT',
      ]);
    } finally {
      await gw.close();
      dying.close();
      silent.close();
    }
  });
});
