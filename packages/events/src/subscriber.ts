import { coerceError, type Logger, silentLogger } from '@qlab/kit';
import mqtt, { type MqttClient } from 'mqtt';
import { type CloudEvent, cloudEventSchema } from './cloudevent';

export interface SubscriberOptions {
  mqttUrl: string;
  /** A fixed id: with `clean: false` the broker keeps our queue while we are away. */
  clientId: string;
  /** MQTT topic filters, e.g. `qlab/+/job.completed` or `qlab/#`. */
  topics: string[];
  /** Persistent session (default) so events published while we were away are delivered. */
  clean?: boolean;
  /** How many recent event ids to remember for deduplication. Default 10,000. */
  dedupeWindow?: number;
  logger?: Logger;
  /** Handled before the PUBACK is sent: if it throws, the broker redelivers. */
  onEvent(event: CloudEvent, topic: string): void | Promise<void>;
}

export interface Subscription {
  client: MqttClient;
  /** Events dropped as duplicates so far. */
  readonly duplicates: number;
  close(): Promise<void>;
}

/** Remembers the last N ids; the oldest is forgotten first. */
class RecentIds {
  private readonly ids = new Set<string>();
  constructor(private readonly size: number) {}
  seen(id: string): boolean {
    if (this.ids.has(id)) return true;
    this.ids.add(id);
    if (this.ids.size > this.size) this.ids.delete(this.ids.values().next().value as string);
    return false;
  }
}

/**
 * Subscribes with QoS 1, validates each message as a CloudEvent, drops repeats by `id`, and
 * acknowledges a message only after `onEvent` finished, so a crash mid-handler means redelivery.
 */
export async function subscribeEvents(options: SubscriberOptions): Promise<Subscription> {
  const logger = options.logger ?? silentLogger();
  const recent = new RecentIds(options.dedupeWindow ?? 10_000);
  let duplicates = 0;
  const client = mqtt.connect(options.mqttUrl, {
    clientId: options.clientId,
    clean: options.clean ?? false,
    reconnectPeriod: 1000,
    connectTimeout: 5000,
    resubscribe: true,
  });

  const handle = async (topic: string, payload: Buffer) => {
    let event: CloudEvent;
    try {
      event = cloudEventSchema.parse(JSON.parse(payload.toString('utf8'))) as CloudEvent;
    } catch (err) {
      logger.warn({ topic, err: coerceError(err) }, 'dropping a message that is not a CloudEvent');
      return;
    }
    if (recent.seen(event.id)) {
      duplicates++;
      return;
    }
    await options.onEvent(event, topic);
  };

  // mqtt.js sends the PUBACK when this callback is called: only after our handler is done.
  client.handleMessage = (packet, done) => {
    if (packet.cmd !== 'publish') return done();
    handle(packet.topic, packet.payload as Buffer).then(
      () => done(),
      (err) => logger.error({ err: coerceError(err), topic: packet.topic }, 'event handler failed'),
    );
  };

  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => {
      client.end(true);
      reject(err);
    };
    client.once('error', onError);
    client.once('connect', (connack) => {
      client.off('error', onError);
      // A resumed persistent session already has our subscriptions; subscribing again is harmless.
      void connack;
      client.subscribe(
        options.topics.map((t) => t),
        { qos: 1 },
        (err) => (err ? reject(err) : resolve()),
      );
    });
  });
  client.on('error', (err) => logger.debug({ err }, 'mqtt subscriber error'));

  return {
    client,
    get duplicates() {
      return duplicates;
    },
    close: () => client.endAsync(),
  };
}
