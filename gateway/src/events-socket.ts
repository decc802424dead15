import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { problem, refuseUpgrade } from '@qlab/kit';
import mqtt, { type MqttClient } from 'mqtt';
import { type WebSocket, WebSocketServer } from 'ws';
import { CONSOLE_PROTOCOL } from './auth';

/** MQTT topic filter match (+ one level, # the rest). */
export function topicMatches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

const VALID_FILTER = /^(qlab)(\/([\w.-]+|\+))*(\/#)?$/;

/**
 * /api/events?topic=<filter>: the CloudEvents from MQTT, one JSON message each, for browsers and
 * scripts that cannot speak MQTT. One broker subscription (qlab/#) feeds every socket.
 */
export class EventsSocket {
  private readonly wss = new WebSocketServer({
    noServer: true,
    maxPayload: 4096,
    // A browser that sent its key as a subprotocol also offered `qlab`: answer that one.
    handleProtocols: (offered) => (offered.has(CONSOLE_PROTOCOL) ? CONSOLE_PROTOCOL : false),
  });
  private readonly clients = new Map<WebSocket, string>();
  private client: MqttClient | undefined;
  /** The broker granted qlab/# on the current connection (a SUBACK without 0x80). */
  private subscribed = false;
  /** Sockets waiting for that, to be told "subscribed". */
  private readonly waiting = new Set<() => void>();
  private readonly subscribeWaitMs: number;

  /** `subscribeWaitMs`: how long a new socket waits for the broker before it is closed (1013). */
  constructor(mqttUrl: string | undefined, options: { subscribeWaitMs?: number } = {}) {
    this.subscribeWaitMs = options.subscribeWaitMs ?? 10_000;
    if (!mqttUrl) return;
    this.client = mqtt.connect(mqttUrl, {
      clientId: `gateway-${process.pid}-${Date.now()}`,
      clean: true,
      reconnectPeriod: 1000,
      // The subscription is made on every connect below, where its SUBACK is read; mqtt.js's own
      // resubscribe would answer that call with an empty grant.
      resubscribe: false,
    });
    this.client.on('connect', () =>
      this.client!.subscribe('qlab/#', { qos: 1 }, (err, granted) => {
        // MQTT 3.1.1 §3.9.3: 0x80 in the SUBACK is a refusal (mqtt.js does not call it an error).
        if (err || !granted?.length || granted.some((g) => g.qos === 0x80)) return;
        this.subscribed = true;
        for (const tell of this.waiting) tell();
        this.waiting.clear();
      }),
    );
    // A lost connection loses what is published until the gateway has subscribed again (a clean
    // session): the open sockets are closed (1013, try again later) rather than left with a gap.
    this.client.on('close', () => {
      if (!this.subscribed) return;
      this.subscribed = false;
      for (const ws of this.clients.keys())
        ws.close(1013, 'the gateway lost its broker connection; reconnect');
    });
    this.client.on('error', () => undefined);
    this.client.on('message', (topic, payload) => {
      const text = payload.toString('utf8');
      for (const [ws, filter] of this.clients) {
        if (!topicMatches(filter, topic)) continue;
        if (ws.bufferedAmount > 4 * 1024 * 1024) ws.terminate();
        else ws.send(text);
      }
    });
  }

  get available(): boolean {
    return this.client !== undefined;
  }

  /** Call after authentication; answers 400 for a bad filter and 503 without a broker. */
  handle(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const filter = new URL(req.url ?? '/', 'http://x').searchParams.get('topic') ?? 'qlab/#';
    if (!this.client) {
      refuseUpgrade(socket, problem(503, 'SERVICE_UNAVAILABLE', 'MQTT_URL is not set: no events to stream'));
      return;
    }
    if (!VALID_FILTER.test(filter) || filter.length > 200) {
      refuseUpgrade(
        socket,
        problem(400, 'BAD_REQUEST', 'topic must be an MQTT filter under qlab/, e.g. qlab/job-worker/#'),
      );
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      this.clients.set(ws, filter);
      ws.on('close', () => this.clients.delete(ws));
      ws.on('error', () => this.clients.delete(ws));
      // "subscribed" promises that every event published from now on reaches this socket (until
      // it is closed), so it is sent only once the broker holds the gateway's subscription; a
      // broker that does not within subscribeWaitMs closes the socket (1013).
      const tell = () => {
        if (ws.readyState === ws.OPEN) ws.send(JSON.stringify({ type: 'subscribed', topic: filter }));
      };
      if (this.subscribed) return tell();
      const giveUp = setTimeout(() => {
        this.waiting.delete(waited);
        ws.close(1013, 'the gateway has no broker connection; try again later');
      }, this.subscribeWaitMs);
      const waited = () => {
        clearTimeout(giveUp);
        tell();
      };
      this.waiting.add(waited);
      ws.on('close', () => {
        clearTimeout(giveUp);
        this.waiting.delete(waited);
      });
    });
  }

  async close(): Promise<void> {
    for (const ws of this.clients.keys()) ws.terminate();
    this.wss.close();
    await this.client?.endAsync();
  }
}
