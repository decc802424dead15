import path from 'node:path';
import { type Knex, openDatabase } from '@qlab/kit';
import { tempDir } from '@qlab/testkit';
import { outboxMigration } from '../src';

export async function outboxDb(): Promise<{ knex: Knex; cleanup(): Promise<void> }> {
  const tmp = tempDir();
  const knex = await openDatabase({
    target: { client: 'sqlite', filename: path.join(tmp.dir, 'events.db') },
    migrations: { '000_outbox': outboxMigration },
  });
  return {
    knex,
    async cleanup() {
      await knex.destroy();
      tmp.cleanup();
    },
  };
}
