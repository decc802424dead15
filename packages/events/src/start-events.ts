import type { Knex, Lifecycle, Logger } from '@qlab/kit';
import type { EventCatalogue, EventSpecs } from './catalogue';
import { Outbox } from './outbox';
import { OutboxPublisher, type OutboxSource } from './publisher';

export interface ServiceEvents<E extends EventSpecs = EventSpecs> {
  outbox: Outbox<E>;
  publisher: OutboxPublisher;
}

/**
 * A service's events: an outbox to record them in its transactions and a publisher draining
 * it to `mqttUrl`, stopped with the service's lifecycle. Without a broker URL, events are off
 * (nothing is recorded, so no outbox grows unread) and this says so in the log.
 */
export function startServiceEvents<E extends EventSpecs>(options: {
  /** What the service publishes (its src/events.ts); its name is the service's on the bus. */
  catalogue: EventCatalogue<E>;
  /** The service's knex database (its `event_outbox` table), or another outbox source. */
  knex?: Knex;
  source?: OutboxSource;
  mqttUrl: string | undefined;
  logger: Logger;
  lifecycle: Lifecycle;
}): ServiceEvents<E> | undefined {
  if (!options.mqttUrl) {
    options.logger.warn('MQTT_URL is not set: events are off');
    return undefined;
  }
  const publisher = new OutboxPublisher({
    knex: options.knex,
    source: options.source,
    mqttUrl: options.mqttUrl,
    clientId: `${options.catalogue.service}-${process.pid}`,
    logger: options.logger,
  });
  publisher.start();
  options.lifecycle.add('event publisher', () => publisher.stop());
  return { outbox: new Outbox(options.catalogue, () => publisher.kick()), publisher };
}

/** What /health says about a service's events: off, or the publisher's connection and count. */
export function eventsHealth<E extends EventSpecs>(
  events: ServiceEvents<E> | undefined,
): { connected: boolean; published: number } | 'off' {
  return events
    ? { connected: events.publisher.connected, published: events.publisher.stats.published }
    : 'off';
}
