import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { problem, refuseUpgrade } from '@qlab/kit';
import mqtt, { type MqttClient } from 'mqtt';
import { type WebSocket, WebSocketServer } from 'ws';

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
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 4096 });
  private readonly clients = new Map<WebSocket, string>();
  private client: MqttClient | undefined;
  /** Resolved once the broker has acknowledged the qlab/# subscription (its SUBACK). */
  private readonly brokerSubscribed: Promise<void>;

  constructor(mqttUrl: string | undefined) {
    let subscribed: () => void = () => undefined;
    this.brokerSubscribed = new Promise((resolve) => {
      subscribed = resolve;
    });
    if (!mqttUrl) return;
    this.client = mqtt.connect(mqttUrl, {
      clientId: `gateway-${process.pid}-${Date.now()}`,
      clean: true,
      reconnectPeriod: 1000,
    });
    this.client.on('connect', () =>
      this.client!.subscribe('qlab/#', { qos: 1 }, (err) => {
        if (!err) subscribed();
      }),
    );
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
      // "subscribed" promises that events published from now on reach this socket, so it is
      // sent only once the broker has the gateway's subscription.
      void this.brokerSubscribed.then(() => {
        if (ws.readyState === ws.OPEN) ws.send(JSON.stringify({ type: 'subscribed', topic: filter }));
      });
    });
  }

  async close(): Promise<void> {
    for (const ws of this.clients.keys()) ws.terminate();
    this.wss.close();
    await this.client?.endAsync();
  }
}
