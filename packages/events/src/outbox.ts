import type { Knex, Migration } from '@qlab/kit';
import type { EventCatalogue, EventData, EventSpecs } from './catalogue';
import { type CloudEvent, createEvent, topicFor } from './cloudevent';

export const OUTBOX_TABLE = 'event_outbox';

/** Add to a service's migrations: the table events wait in until the publisher has sent them. */
export const outboxMigration: Migration = {
  up: (knex) =>
    knex.schema.createTable(OUTBOX_TABLE, (t) => {
      t.bigIncrements('seq').primary();
      t.string('event_id', 64).notNullable().unique();
      t.string('topic', 255).notNullable();
      t.text('payload').notNullable();
      t.bigInteger('created_at').notNullable();
    }),
  down: (knex) => knex.schema.dropTable(OUTBOX_TABLE),
};

/**
 * Writes events in the caller's transaction, so an event exists exactly when the change it
 * describes was committed. The publisher sends them later; `written` wakes it up. Built on a
 * service's event catalogue, it records only declared types with data matching their schema
 * (anything else throws, and the transaction rolls back); built on a bare name (tests of the
 * event machinery itself), it records any type.
 */
export class Outbox<E extends EventSpecs = EventSpecs> {
  readonly service: string;
  private readonly catalogue: EventCatalogue<E> | undefined;

  constructor(
    catalogue: EventCatalogue<E> | string,
    private readonly onWritten: () => void = () => undefined,
  ) {
    this.catalogue = typeof catalogue === 'string' ? undefined : catalogue;
    this.service = typeof catalogue === 'string' ? catalogue : catalogue.service;
  }

  async record<T extends keyof E & string>(
    trx: Knex | Knex.Transaction,
    type: T,
    subject: string,
    data: EventData<E, T>,
    /** When it happened (epoch ms), for a service whose rows carry its own clock's times. Default now. */
    at: number = Date.now(),
  ): Promise<CloudEvent<EventData<E, T>>> {
    this.catalogue?.check(type, data);
    const event = { ...createEvent(this.service, type, subject, data), time: new Date(at).toISOString() };
    await trx(OUTBOX_TABLE).insert({
      event_id: event.id,
      topic: topicFor(this.service, type),
      payload: JSON.stringify(event),
      created_at: at,
    });
    return event;
  }

  /** Call after the transaction commits, so the publisher sends without waiting for its next poll. */
  written(): void {
    this.onWritten();
  }
}
