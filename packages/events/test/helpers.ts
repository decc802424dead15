import path from 'node:path';
import { type Knex, openDatabase, parseDbUrl } from '@qlab/kit';
import { pgSchemaUrl, tempDir } from '@qlab/testkit';
import { outboxMigration } from '../src';

/** An outbox database on SQLite (default) or in a fresh PostgreSQL schema. */
export async function outboxDb(pgUrl?: string): Promise<{ knex: Knex; cleanup(): Promise<void> }> {
  const tmp = tempDir();
  const pg = pgUrl ? pgSchemaUrl(pgUrl) : undefined;
  const knex = await openDatabase({
    target: pg ? parseDbUrl(pg.url) : { client: 'sqlite', filename: path.join(tmp.dir, 'events.db') },
    migrations: { '000_outbox': outboxMigration },
  });
  return {
    knex,
    async cleanup() {
      if (pg) await knex.raw('drop schema if exists ?? cascade', [pg.schema]);
      await knex.destroy();
      tmp.cleanup();
    },
  };
}
