import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type EmbeddedBroker, startEmbeddedBroker } from '@qlab/events';
import { closedPort, waitFor } from '@qlab/testkit';
import mqtt from 'mqtt';
import WebSocket from 'ws';
import { EventsSocket } from '../src/events-socket';

/** The events socket on a bare HTTP server (no keys: the gateway checks them before `handle`). */
async function serve(events: EventsSocket): Promise<{ url: string; server: Server }> {
  const server = createServer((_req, res) => res.writeHead(404).end());
  server.on('upgrade', (req, socket, head) => events.handle(req, socket, head));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}/api/events?topic=qlab/%23`,
    server,
  };
}

/** A socket's messages and, once it is closed, its close code. */
function watch(url: string) {
  const ws = new WebSocket(url);
  const messages: { type: string; id?: string }[] = [];
  let closed: number | undefined;
  ws.on('message', (m) => messages.push(JSON.parse(String(m))));
  ws.on('close', (code) => {
    closed = code;
  });
  ws.on('error', () => undefined);
  return { ws, messages, closed: () => closed };
}

describe("the events socket's promise: 'subscribed' means every later event arrives", () => {
  let broker: EmbeddedBroker | undefined;
  let events: EventsSocket | undefined;
  let server: Server | undefined;
  afterEach(async () => {
    await events?.close();
    server?.close();
    await broker?.close();
    broker = events = server = undefined;
  });

  it('closes a socket with 1013 when the broker cannot be reached, instead of leaving it silent', async () => {
    events = new EventsSocket(`mqtt://127.0.0.1:${await closedPort()}`, { subscribeWaitMs: 300 });
    const s = await serve(events);
    server = s.server;
    const socket = watch(s.url);
    await waitFor(() => socket.closed() !== undefined, 5000);
    expect(socket.closed()).toBe(1013);
    expect(socket.messages).toEqual([]);
  });

  it('sends subscribed once the broker holds the subscription, and closes the sockets when it is lost', async () => {
    broker = await startEmbeddedBroker({ port: 0 });
    const port = Number(new URL(broker.url).port);
    events = new EventsSocket(broker.url, { subscribeWaitMs: 5000 });
    const s = await serve(events);
    server = s.server;
    const first = watch(s.url);
    await waitFor(() => first.messages.length > 0, 5000);
    expect(first.messages[0]).toMatchObject({ type: 'subscribed', topic: 'qlab/#' });
    const publisher = await mqtt.connectAsync(broker.url);
    await publisher.publishAsync('qlab/x/thing.done', JSON.stringify({ type: 'thing.done', id: 'a' }), {
      qos: 1,
    });
    await waitFor(() => first.messages.some((m) => m.id === 'a'), 5000);
    await publisher.endAsync();

    // The broker goes away: the gateway can no longer keep the promise, so it says so.
    await broker.close();
    await waitFor(() => first.closed() !== undefined, 5000);
    expect(first.closed()).toBe(1013);
    // A socket opened while there is no broker waits; when one is back it gets "subscribed".
    const second = watch(s.url);
    broker = await startEmbeddedBroker({ port });
    await waitFor(() => second.messages.length > 0, 5000);
    expect(second.messages[0]).toMatchObject({ type: 'subscribed' });
    second.ws.close();
  }, 20_000);
});
