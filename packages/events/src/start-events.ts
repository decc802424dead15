import type { Knex, Lifecycle, Logger } from '@qlab/kit';
import { Outbox } from './outbox';
import { OutboxPublisher, type OutboxSource } from './publisher';

export interface ServiceEvents {
  outbox: Outbox;
  publisher: OutboxPublisher;
}

/**
 * A service's events: an outbox to record them in its transactions and a publisher draining
 * it to `mqttUrl`, stopped with the service's lifecycle. Without a broker URL, events are off
 * (nothing is recorded, so no outbox grows unread) and this says so in the log.
 */
export function startServiceEvents(options: {
  service: string;
  /** The service's knex database (its `event_outbox` table), or another outbox source. */
  knex?: Knex;
  source?: OutboxSource;
  mqttUrl: string | undefined;
  logger: Logger;
  lifecycle: Lifecycle;
}): ServiceEvents | undefined {
  if (!options.mqttUrl) {
    options.logger.warn('MQTT_URL is not set: events are off');
    return undefined;
  }
  const publisher = new OutboxPublisher({
    knex: options.knex,
    source: options.source,
    mqttUrl: options.mqttUrl,
    clientId: `${options.service}-${process.pid}`,
    logger: options.logger,
  });
  publisher.start();
  options.lifecycle.add('event publisher', () => publisher.stop());
  return { outbox: new Outbox(options.service, () => publisher.kick()), publisher };
}

/** What /health says about a service's events: off, or the publisher's connection and count. */
export function eventsHealth(
  events: ServiceEvents | undefined,
): { connected: boolean; published: number } | 'off' {
  return events
    ? { connected: events.publisher.connected, published: events.publisher.stats.published }
    : 'off';
}
