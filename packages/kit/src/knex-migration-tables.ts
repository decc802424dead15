import type { Knex } from 'knex';

/**
 * Creates knex's two bookkeeping tables and the one lock row, one process at a time.
 *
 * knex does this itself without any lock: it checks for `knex_migrations_lock`, creates it, reads
 * its rows and inserts `{is_locked: 0}` when it found none. Two processes starting together can
 * both find none and both insert, and from then on every start fails for good with "Migration
 * table is already locked" (knex's lock is `update … where is_locked = 0`, which must touch
 * exactly one row). CI saw it with eight processes on one PostgreSQL schema.
 *
 * Here the same steps run in one transaction that only one process can be in: on PostgreSQL under
 * a transaction-scoped advisory lock keyed by the schema (released by commit, rollback or a dead
 * session, so a killed process never leaves it held); on SQLite a plain transaction, which WAL
 * mode serializes: one that read a snapshot another process has since written over fails with
 * SQLITE_BUSY at its first write, and the caller starts again. A lock table
 * that an earlier race left with more than one row is mended to one. knex then finds everything in
 * place and only takes its own lock row.
 */
export async function prepareMigrationTables(knex: Knex, postgres: boolean): Promise<void> {
  await knex.transaction(async (trx) => {
    if (postgres)
      await trx.raw(
        "select pg_advisory_xact_lock(hashtext('qlab migrations ' || coalesce(current_schema(), '')))",
      );
    if (!(await trx.schema.hasTable('knex_migrations'))) {
      // The columns knex creates (table-creator.js), so its own code and CLI read them unchanged.
      await trx.schema.createTable('knex_migrations', (t) => {
        t.increments();
        t.string('name');
        t.integer('batch');
        t.timestamp('migration_time');
      });
    }
    if (!(await trx.schema.hasTable('knex_migrations_lock'))) {
      await trx.schema.createTable('knex_migrations_lock', (t) => {
        t.increments('index').primary();
        t.integer('is_locked');
      });
    }
    const rows = (await trx('knex_migrations_lock').orderBy('index').select('index', 'is_locked')) as {
      index: number;
      is_locked: number;
    }[];
    if (rows.length === 0) await trx('knex_migrations_lock').insert({ is_locked: 0 });
    if (rows.length > 1) {
      // The duplicate rows were all inserted unlocked; a held lock is in the first one if anywhere.
      await trx('knex_migrations_lock').whereNot('index', rows[0]!.index).delete();
    }
  });
}
