import { randomUUID } from 'node:crypto';
import type { Logger } from '@qlab/kit';
import mqtt from 'mqtt';
import { CHANNELS, type Channel, type LiveHub } from './hub';

/**
 * Carries the live hub's messages between replicas over MQTT: each replica publishes what its
 * own syncs record to `qlab/tracker-live/<scope>/<channel>` (QoS 0: a live view, not a record;
 * the events of record go through the outbox) and delivers what the others publish to its own
 * sockets, skipping its own. `scope` keeps trackers of different databases apart.
 */
export function relayHub(hub: LiveHub, options: { mqttUrl: string; scope: string; logger: Logger }) {
  const origin = randomUUID();
  const base = `qlab/tracker-live/${options.scope.replace(/[^A-Za-z0-9_.-]/g, '_')}`;
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
    let envelope: unknown;
    try {
      envelope = JSON.parse(payload.toString('utf8'));
    } catch {
      return;
    }
    // Anything on the broker may publish here: `null`, a number or an array is not an envelope.
    if (typeof envelope !== 'object' || envelope === null) return;
    const e = envelope as { origin?: unknown; text?: unknown };
    if (e.origin === origin || typeof e.text !== 'string') return;
    hub.receive(channel, e.text);
  });
  hub.relay = (channel, text) => {
    // Not queued while disconnected: a live view that comes back late is worse than none.
    if (client.connected) client.publish(`${base}/${channel}`, JSON.stringify({ origin, text }), { qos: 0 });
  };
  return {
    async close() {
      hub.relay = undefined;
      await client.endAsync(true).catch(() => undefined);
    },
  };
}
