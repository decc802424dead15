import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { bearerToken, constantTimeEqual, problem, refuseUpgrade } from '@qlab/kit';
import { WebSocketServer } from 'ws';
import type { Channel, LiveHub } from './sync/hub';

const PATHS: Record<string, Channel> = {
  '/api/v1/ws/dashboard': 'dashboard',
  '/api/v1/ws/jobs': 'jobs',
  '/api/v1/ws/queue': 'queue',
};

/**
 * WebSockets at /api/v1/ws/{dashboard,jobs,queue}: each client receives the changes of its
 * channel as they are recorded. With a token set, a client authenticates with
 * `Authorization: Bearer`, or (browsers cannot set headers) `?token=`.
 */
export function attachLiveSockets(
  server: Server,
  hub: LiveHub,
  apiToken?: string,
): { clients(): number; close(): void } {
  const wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 });
  const subscribers = new Map<Channel, Set<import('ws').WebSocket>>();
  for (const channel of Object.values(PATHS)) {
    const set = new Set<import('ws').WebSocket>();
    subscribers.set(channel, set);
    // Serialized once per message, sent to every client; slow clients are dropped, not buffered forever.
    hub.on(channel, (text: string) => {
      for (const ws of set) {
        if (ws.bufferedAmount > 4 * 1024 * 1024) ws.terminate();
        else ws.send(text);
      }
    });
  }
  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const channel = PATHS[url.pathname];
    // Answer every upgrade: one left unanswered holds a connection until the idle timeout.
    if (!channel) {
      refuseUpgrade(socket, problem(404, 'NOT_FOUND', `no WebSocket at ${url.pathname}`));
      return;
    }
    if (apiToken) {
      const given = bearerToken(req.headers.authorization) ?? url.searchParams.get('token') ?? '';
      if (!constantTimeEqual(given, apiToken)) {
        refuseUpgrade(
          socket,
          problem(401, 'UNAUTHORIZED', 'send the API token as Authorization: Bearer or ?token='),
        );
        return;
      }
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const set = subscribers.get(channel)!;
      set.add(ws);
      ws.on('close', () => set.delete(ws));
      ws.on('error', () => set.delete(ws));
      ws.send(JSON.stringify({ type: 'welcome', channel, at: new Date().toISOString() }));
    });
  };
  server.on('upgrade', onUpgrade);
  return {
    clients: () => [...subscribers.values()].reduce((a, s) => a + s.size, 0),
    close() {
      server.off('upgrade', onUpgrade);
      for (const set of subscribers.values()) for (const ws of set) ws.terminate();
      wss.close();
    },
  };
}
