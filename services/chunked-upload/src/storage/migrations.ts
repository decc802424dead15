import { outboxMigration } from '@qlab/events';
import type { Migration } from '@qlab/kit';

export const migrations: Record<string, Migration> = {
  '001_uploads': {
    async up(knex) {
      await knex.schema.createTable('uploads', (t) => {
        t.string('id', 40).primary();
        t.string('protocol', 16).notNullable();
        t.string('key_id', 32).notNullable();
        t.text('client_filename').notNullable();
        t.string('client_upload_id', 128);
        t.text('target_path');
        // Equals target_path while the upload is active, null otherwise: a unique index on it
        // makes "two active uploads to one target" impossible on SQLite and PostgreSQL alike.
        t.string('active_target', 1100).unique();
        t.text('data_path').notNullable();
        t.bigInteger('offset').notNullable().defaultTo(0);
        t.bigInteger('length');
        t.text('metadata').notNullable().defaultTo('{}');
        t.string('status', 16).notNullable();
        t.string('concat', 16);
        t.text('concat_parts').notNullable().defaultTo('[]');
        t.integer('total_chunks');
        t.integer('next_chunk').notNullable().defaultTo(0);
        t.bigInteger('created_at').notNullable();
        t.bigInteger('updated_at').notNullable();
        t.bigInteger('expires_at').notNullable();
        t.bigInteger('completed_at');
        t.index(['key_id', 'client_filename', 'status']);
        t.index(['key_id', 'client_upload_id']);
        t.index(['status', 'expires_at']);
      });
      await knex.schema.createTable('upload_chunks', (t) => {
        t.string('upload_id', 40).notNullable().references('id').inTable('uploads').onDelete('CASCADE');
        t.integer('chunk_index').notNullable();
        t.bigInteger('size').notNullable();
        t.string('sha256', 64).notNullable();
        t.string('state', 16).notNullable();
        t.primary(['upload_id', 'chunk_index']);
      });
    },
    async down(knex) {
      await knex.schema.dropTable('upload_chunks');
      await knex.schema.dropTable('uploads');
    },
  },
  '002_outbox': outboxMigration,
  // Finished uploads by time: the bytes-per-day series (GET /stats/daily).
  '003_uploads_completed_index': {
    async up(knex) {
      await knex.schema.alterTable('uploads', (t) => {
        t.index(['status', 'completed_at'], 'uploads_finished');
      });
    },
    async down(knex) {
      await knex.schema.alterTable('uploads', (t) => {
        t.dropIndex(['status', 'completed_at'], 'uploads_finished');
      });
    },
  },
};
