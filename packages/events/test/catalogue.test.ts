import path from 'node:path';
import { openDatabase } from '@qlab/kit';
import { tempDir } from '@qlab/testkit';
import { z } from 'zod';
import { defineEvents, OUTBOX_TABLE, Outbox, outboxMigration, UndeclaredEvent } from '../src';

const catalogue = defineEvents('demo', {
  'thing.made': {
    summary: 'A thing was made.',
    subject: 'things/{id}',
    data: z.object({ id: z.string() }).strict(),
  },
});

describe('an outbox built on a catalogue', () => {
  const tmp = tempDir('qlab-catalogue-');
  afterAll(() => tmp.cleanup());

  it('records declared events and refuses the rest inside the transaction, which then writes nothing', async () => {
    const knex = await openDatabase({
      target: { client: 'sqlite', filename: path.join(tmp.dir, 'o.db') },
      migrations: { '001_outbox': outboxMigration },
    });
    try {
      const outbox = new Outbox(catalogue);
      await knex.transaction((trx) => outbox.record(trx, 'thing.made', 'things/1', { id: '1' }));
      const refusals = [
        // @ts-expect-error not a declared type: the compiler says so too
        () => knex.transaction((trx) => outbox.record(trx, 'thing.lost', 'things/1', { id: '1' })),
        // @ts-expect-error data of the wrong shape
        () => knex.transaction((trx) => outbox.record(trx, 'thing.made', 'things/1', { id: 1 })),
        () =>
          knex.transaction(async (trx) => {
            await trx(OUTBOX_TABLE).insert({ event_id: 'before', topic: 't', payload: '{}', created_at: 0 });
            // @ts-expect-error an extra member
            await outbox.record(trx, 'thing.made', 'things/1', { id: '1', secret: 'x' });
          }),
      ];
      for (const refuse of refusals) await expect(refuse()).rejects.toBeInstanceOf(UndeclaredEvent);
      const rows = await knex(OUTBOX_TABLE).select('topic');
      expect(rows).toEqual([{ topic: 'qlab/demo/thing.made' }]);
    } finally {
      await knex.destroy();
    }
  });

  it('refuses a catalogue whose names cannot be topics', () => {
    expect(() => defineEvents('demo', { 'a/#': catalogue.events['thing.made'] })).toThrow(/bad topic/);
  });
});
