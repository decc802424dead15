import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import type { Logger } from '@qlab/kit';
import mqtt from 'mqtt';
import { CHANNELS, type Channel, type LiveHub } from './hub';

/** Envelopes older (or further ahead) than this are dropped: replicas' clocks agree closer than that. */
const MAX_AGE_MS = 30_000;

/** A message between replicas, sealed with the deployment's relay secret. */
export interface Envelope {
  origin: string;
  /** ms since the epoch, when it was sent. */
  at: number;
  text: string;
  /** HMAC-SHA256 (base64url) over channel, origin, at and text. */
  mac: string;
}

const macOf = (secret: string, channel: string, e: Omit<Envelope, 'mac'>) =>
  createHmac('sha256', secret).update(`${channel}\n${e.origin}\n${e.at}\n${e.text}`).digest('base64url');

export function sealEnvelope(secret: string, channel: string, e: Omit<Envelope, 'mac'>): Envelope {
  return { ...e, mac: macOf(secret, channel, e) };
}

/**
 * Carries the live hub's messages between replicas over MQTT: each replica publishes what its
 * own syncs record to `qlab/tracker-live/<scope>/<channel>` (QoS 0: a live view, not a record;
 * the events of record go through the outbox) and delivers what the others publish to its own
 * sockets, skipping its own. `scope` keeps trackers of different databases apart.
 *
 * Anyone on the broker can publish on those topics, so every envelope carries an HMAC with
 * `secret`, which the replicas read from their shared database (migration 005): a message
 * without a valid one, older than 30 s, or seen before (a replay) reaches no socket.
 */
export function relayHub(
  hub: LiveHub,
  options: { mqttUrl: string; scope: string; secret: string; logger: Logger },
) {
  const { secret } = options;
  const origin = randomUUID();
  const base = `qlab/tracker-live/${options.scope.replace(/[^A-Za-z0-9_.-]/g, '_')}`;
  /** MACs of envelopes delivered in the last MAX_AGE_MS, by when they were sent. */
  const seen = new Map<string, number>();
  const client = mqtt.connect(options.mqttUrl, {
    clientId: `qlab-tracker-live-${origin}`,
    reconnectPeriod: 1000,
    connectTimeout: 5000,
  });
  client.on('error', (err) => options.logger.warn({ err }, 'live relay: MQTT error'));
  client.on('connect', () => {
    client.subscribe(`${base}/+`, { qos: 0 }, (err) => {
      if (err) options.logger.warn({ err }, 'live relay: subscribe failed');
    });
  });
  client.on('message', (topic, payload) => {
    const channel = topic.slice(base.length + 1) as Channel;
    if (!CHANNELS.includes(channel)) return;
    const e = authentic(channel, payload);
    if (!e || e.origin === origin) return;
    const now = Date.now();
    for (const [mac, at] of seen) if (Math.abs(now - at) > MAX_AGE_MS) seen.delete(mac);
    if (seen.has(e.mac)) return;
    seen.set(e.mac, e.at);
    hub.receive(channel, e.text);
  });

  function authentic(channel: string, payload: Buffer): Envelope | undefined {
    let e: unknown;
    try {
      e = JSON.parse(payload.toString('utf8'));
    } catch {
      return undefined;
    }
    // `null`, numbers, arrays and objects of other shapes are not envelopes.
    if (typeof e !== 'object' || e === null) return undefined;
    const { origin: o, at, text, mac } = e as Record<string, unknown>;
    if (
      typeof o !== 'string' ||
      typeof at !== 'number' ||
      typeof text !== 'string' ||
      typeof mac !== 'string'
    )
      return undefined;
    if (!Number.isFinite(at) || Math.abs(Date.now() - at) > MAX_AGE_MS) return undefined;
    const want = Buffer.from(macOf(secret, channel, { origin: o, at, text }));
    const given = Buffer.from(mac);
    if (given.length !== want.length || !timingSafeEqual(given, want)) return undefined;
    return { origin: o, at, text, mac };
  }

  hub.relay = (channel, text) => {
    // Not queued while disconnected: a live view that comes back late is worse than none.
    if (!client.connected) return;
    const envelope = sealEnvelope(secret, channel, { origin, at: Date.now(), text });
    client.publish(`${base}/${channel}`, JSON.stringify(envelope), { qos: 0 });
  };
  return {
    async close() {
      hub.relay = undefined;
      await client.endAsync(true).catch(() => undefined);
    },
  };
}
