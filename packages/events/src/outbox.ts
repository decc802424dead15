import type { Knex, Migration } from '@qlab/kit';
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
 * describes was committed. The publisher sends them later; `written` wakes it up.
 */
export class Outbox {
  constructor(
    readonly service: string,
    private readonly onWritten: () => void = () => undefined,
  ) {}

  async record<T>(
    trx: Knex | Knex.Transaction,
    type: string,
    subject: string,
    data: T,
    /** When it happened (epoch ms), for a service whose rows carry its own clock's times. Default now. */
    at: number = Date.now(),
  ): Promise<CloudEvent<T>> {
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
