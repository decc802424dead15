import { coerceError, type Logger, silentLogger, sleep, withTimeout } from '@qlab/kit';
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
  /** Tries per delivery before an event is dead-lettered. Default 5. */
  maxAttempts?: number;
  /** The first retry's delay; each next one doubles (capped at 5 s). Default 100 ms. */
  retryDelayMs?: number;
  /** Where an event goes after `maxAttempts` failures. Default `qlab-dead-letter/<clientId>`. */
  deadLetterTopic?: string;
  /** An attempt that has not finished by then counts as failed. Default 60 s. */
  handlerTimeoutMs?: number;
  logger?: Logger;
  /**
   * Handled before the PUBACK is sent. If it throws it is retried with backoff; after
   * `maxAttempts` the event is published on the dead-letter topic and acknowledged.
   */
  onEvent(event: CloudEvent, topic: string): void | Promise<void>;
}

export interface Subscription {
  client: MqttClient;
  /** Events dropped as duplicates so far. */
  readonly duplicates: number;
  /** Events given up on and published on the dead-letter topic so far. */
  readonly deadLettered: number;
  close(): Promise<void>;
}

/** Remembers the last N handled ids; the oldest is forgotten first. */
class RecentIds {
  private readonly ids = new Set<string>();
  constructor(private readonly size: number) {}
  has(id: string): boolean {
    return this.ids.has(id);
  }
  add(id: string): void {
    this.ids.add(id);
    if (this.ids.size > this.size) this.ids.delete(this.ids.values().next().value as string);
  }
}

const MAX_RETRY_DELAY_MS = 5000;
const DEAD_LETTER_TIMEOUT_MS = 5000;

/**
 * Subscribes with QoS 1, validates each message as a CloudEvent, drops repeats by `id`, and
 * acknowledges a message only after `onEvent` finished, so a crash mid-handler means redelivery.
 *
 * An id counts as seen only once its handler succeeded (or it was dead-lettered): a redelivery
 * of an event whose handler failed is handled again, not dropped. mqtt.js reads one message at a
 * time, so a failing handler holds the others back for its retries only (0.1+0.2+0.4+0.8 s by
 * default), never for good.
 */
export async function subscribeEvents(options: SubscriberOptions): Promise<Subscription> {
  const logger = options.logger ?? silentLogger();
  const recent = new RecentIds(options.dedupeWindow ?? 10_000);
  const client = mqtt.connect(options.mqttUrl, {
    clientId: options.clientId,
    clean: options.clean ?? false,
    reconnectPeriod: 1000,
    connectTimeout: 5000,
    resubscribe: true,
  });

  const maxAttempts = Math.max(1, options.maxAttempts ?? 5);
  const retryDelayMs = options.retryDelayMs ?? 100;
  const deadLetterTopic = options.deadLetterTopic ?? `qlab-dead-letter/${options.clientId}`;
  const handlerTimeoutMs = options.handlerTimeoutMs ?? 60_000;
  const inFlight = new Map<string, Promise<boolean>>();
  let duplicates = 0;
  let deadLettered = 0;
  let closing = false;
  // Its own client: a PUBACK for a publish from inside the message handler would never be read.
  let deadLetterClient: Promise<MqttClient> | undefined;

  const deadLetter = async (topic: string, event: CloudEvent, err: Error, attempts: number) => {
    deadLetterClient ??= mqtt.connectAsync(options.mqttUrl, {
      clientId: `${options.clientId}-dead-letter`,
      reconnectPeriod: 1000,
      connectTimeout: DEAD_LETTER_TIMEOUT_MS,
    });
    const body = JSON.stringify({
      topic,
      error: err.message,
      attempts,
      failed_at: new Date().toISOString(),
      event,
    });
    const connecting = deadLetterClient;
    const publisher = await withTimeout(connecting, DEAD_LETTER_TIMEOUT_MS).catch((err) => {
      connecting.then(undefined, () => {
        if (deadLetterClient === connecting) deadLetterClient = undefined;
      });
      throw err;
    });
    await withTimeout(publisher.publishAsync(deadLetterTopic, body, { qos: 1 }), DEAD_LETTER_TIMEOUT_MS);
  };

  /** true: acknowledge the message; false: leave it unacknowledged for the broker to redeliver. */
  const handle = async (topic: string, payload: Buffer): Promise<boolean> => {
    let event: CloudEvent;
    try {
      event = cloudEventSchema.parse(JSON.parse(payload.toString('utf8'))) as CloudEvent;
    } catch (err) {
      logger.warn({ topic, err: coerceError(err) }, 'dropping a message that is not a CloudEvent');
      return true;
    }
    // A redelivery (after a reconnect) while the first delivery's handler still runs waits for
    // it, so one event's handler never runs twice at once.
    while (inFlight.has(event.id)) await inFlight.get(event.id)!.catch(() => undefined);
    if (recent.has(event.id)) {
      duplicates++;
      return true;
    }
    const running = attempts(topic, event);
    inFlight.set(event.id, running);
    try {
      return await running;
    } finally {
      inFlight.delete(event.id);
    }
  };

  const attempts = async (topic: string, event: CloudEvent): Promise<boolean> => {
    // A delivery whose connection is gone cannot be acknowledged: the broker will redeliver it.
    const stream = client.stream;
    const connectionLost = () => closing || client.stream !== stream || stream.destroyed;
    let lastError = new Error('not handled');
    for (let attempt = 1; attempt <= maxAttempts && !connectionLost(); attempt++) {
      try {
        // A handler that never settles would hold every later message: it counts as a failure
        // after handlerTimeoutMs (the attempt is not cancelled, only no longer waited for).
        await withTimeout(
          Promise.resolve(options.onEvent(event, topic)),
          handlerTimeoutMs,
          `the handler did not finish within ${handlerTimeoutMs} ms`,
        );
        recent.add(event.id);
        return true;
      } catch (err) {
        lastError = coerceError(err);
        logger.warn({ err: lastError, topic, id: event.id, attempt }, 'event handler failed');
        if (attempt < maxAttempts)
          await sleep(Math.min(retryDelayMs * 2 ** (attempt - 1), MAX_RETRY_DELAY_MS));
      }
    }
    if (connectionLost()) return false;
    try {
      await deadLetter(topic, event, lastError, maxAttempts);
    } catch (err) {
      logger.error(
        { err: coerceError(err), topic, id: event.id },
        'cannot dead-letter an event: left for redelivery',
      );
      return false;
    }
    deadLettered++;
    recent.add(event.id);
    logger.error(
      { err: lastError, topic, id: event.id, deadLetterTopic },
      'event handler gave up: event dead-lettered',
    );
    return true;
  };

  // mqtt.js sends the PUBACK when this callback is called: only after our handler is done.
  client.handleMessage = (packet, done) => {
    if (packet.cmd !== 'publish') return done();
    handle(packet.topic, packet.payload as Buffer).then(
      (ack) => {
        if (ack) return done();
        // Unacknowledged: drop the connection so the broker redelivers it (persistent session)
        // instead of the stream waiting on this message for ever.
        if (!closing && !client.stream.destroyed) client.stream.destroy();
      },
      (err) => {
        logger.error({ err: coerceError(err), topic: packet.topic }, 'event handling failed');
        if (!closing && !client.stream.destroyed) client.stream.destroy();
      },
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
      client.subscribe(options.topics, { qos: 1 }, (err) => (err ? reject(err) : resolve()));
    });
  });
  client.on('error', (err) => logger.debug({ err }, 'mqtt subscriber error'));

  return {
    client,
    get duplicates() {
      return duplicates;
    },
    get deadLettered() {
      return deadLettered;
    },
    async close() {
      closing = true;
      await client.endAsync();
      if (deadLetterClient)
        await deadLetterClient.then(
          (c) => c.endAsync(true),
          () => undefined,
        );
    },
  };
}
