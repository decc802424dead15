import { outboxMigration } from '@qlab/events';
import {
  idempotencyKeysIndexMigration,
  idempotencyKeysMigration,
  type Knex,
  type Migration,
} from '@qlab/kit';

const archiveColumns = (t: Knex.CreateTableBuilder) => {
  t.increments('id').primary();
  t.string('hash_id', 256).notNullable();
  t.text('notes').notNullable().defaultTo('');
  t.string('filename', 255).notNullable();
  t.bigInteger('size').notNullable();
  t.string('sha256', 64).notNullable();
  t.bigInteger('created_at').notNullable();
};

export const migrations: Record<string, Migration> = {
  '001_archives': {
    async up(knex) {
      await knex.schema.createTable('calibrations', (t) => {
        archiveColumns(t);
        t.index(['hash_id', 'created_at']);
        t.index(['created_at']);
        t.index(['sha256']);
      });
      await knex.schema.createTable('results', (t) => {
        archiveColumns(t);
        t.string('name', 256).notNullable();
        t.index(['hash_id', 'name', 'created_at']);
        t.index(['created_at']);
        t.index(['sha256']);
      });
    },
    async down(knex) {
      await knex.schema.dropTable('results');
      await knex.schema.dropTable('calibrations');
    },
  },
  '002_outbox': outboxMigration,
  // QIBO DB's later versions: a run id on results (dd6f7cc) and a best-runs table (09dd8c2).
  '003_runs_and_best_runs': {
    async up(knex) {
      await knex.schema.alterTable('results', (t) => {
        t.string('run_id', 256);
        t.index(['hash_id', 'name', 'run_id', 'created_at']);
      });
      await knex.schema.createTable('best_runs', (t) => {
        t.increments('id').primary();
        t.string('calibration_hash_id', 256).notNullable();
        t.string('run_id', 256).notNullable();
        t.bigInteger('created_at').notNullable();
      });
    },
    async down(knex) {
      await knex.schema.dropTable('best_runs');
      await knex.schema.alterTable('results', (t) => {
        t.dropIndex(['hash_id', 'name', 'run_id', 'created_at']);
        t.dropColumn('run_id');
      });
    },
  },
  // Idempotency-Key on uploads: a retried upload finds its first archive (found by pnpm chaos).
  '004_idempotency_keys': idempotencyKeysMigration({
    resourceColumn: 'archive_id',
    numeric: true,
    withoutIndex: true,
  }),
  // Expired keys are swept now and then by created_at.
  '005_idempotency_keys_created_at': idempotencyKeysIndexMigration(),
};
