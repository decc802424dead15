import { randomBytes } from 'node:crypto';
import { outboxMigration } from '@qlab/events';
import type { Migration } from '@qlab/kit';

/** Times are epoch milliseconds (BIGINT) so trends and durations are plain arithmetic on both engines. */
export const migrations: Record<string, Migration> = {
  '001_tracker': {
    async up(knex) {
      await knex.schema.createTable('providers', (t) => {
        t.string('name', 32).primary();
        t.string('region', 64);
        t.bigInteger('last_sync_at');
        t.bigInteger('last_success_at');
        t.bigInteger('last_error_at');
        t.text('last_error');
        t.integer('last_error_status');
        t.integer('consecutive_failures').notNullable().defaultTo(0);
        t.bigInteger('jobs_synced_through');
      });
      await knex.schema.createTable('backends', (t) => {
        t.string('provider', 32).notNullable();
        t.string('name', 128).notNullable();
        t.string('status', 16).notNullable();
        t.string('raw_status', 64).notNullable();
        t.text('status_reason');
        t.boolean('is_simulator').notNullable();
        t.integer('qubits');
        t.integer('queue_length');
        t.double('wait_seconds_avg');
        t.double('wait_seconds_p95');
        t.string('processor', 128);
        t.boolean('degraded').notNullable().defaultTo(false);
        t.string('region', 64);
        t.text('details').notNullable().defaultTo('{}');
        t.bigInteger('first_seen_at').notNullable();
        t.bigInteger('updated_at').notNullable();
        t.bigInteger('status_changed_at').notNullable();
        t.primary(['provider', 'name']);
      });
      await knex.schema.createTable('backend_snapshots', (t) => {
        t.bigIncrements('id').primary();
        t.string('provider', 32).notNullable();
        t.string('name', 128).notNullable();
        t.bigInteger('at').notNullable();
        t.string('status', 16).notNullable();
        t.integer('queue_length');
        t.double('wait_seconds_avg');
        t.index(['provider', 'name', 'at']);
        t.index(['at']);
      });
      await knex.schema.createTable('jobs', (t) => {
        t.string('provider', 32).notNullable();
        t.string('id', 128).notNullable();
        t.string('backend', 128);
        t.string('status', 16).notNullable();
        t.string('raw_status', 64).notNullable();
        t.string('program', 128);
        t.string('user_id', 128);
        t.bigInteger('created_at').notNullable();
        t.bigInteger('started_at');
        t.bigInteger('ended_at');
        t.double('quantum_seconds');
        t.integer('shots');
        t.text('tags').notNullable().defaultTo('[]');
        t.text('failure_reason');
        t.string('session_id', 128);
        t.bigInteger('first_seen_at').notNullable();
        t.bigInteger('updated_at').notNullable();
        t.bigInteger('status_changed_at').notNullable();
        t.primary(['provider', 'id']);
        t.index(['created_at']);
        t.index(['backend', 'created_at']);
        t.index(['status', 'created_at']);
        t.index(['id']);
      });
      await knex.schema.createTable('job_transitions', (t) => {
        t.bigIncrements('seq').primary();
        t.string('provider', 32).notNullable();
        t.string('job_id', 128).notNullable();
        t.string('from_status', 16);
        t.string('to_status', 16).notNullable();
        t.bigInteger('at').notNullable();
        t.index(['provider', 'job_id']);
        t.index(['at']);
      });
      await knex.schema.createTable('usage_snapshots', (t) => {
        t.bigIncrements('id').primary();
        t.string('provider', 32).notNullable();
        t.bigInteger('at').notNullable();
        t.double('consumed_seconds').notNullable();
        t.double('limit_seconds');
        t.bigInteger('period_start');
        t.bigInteger('period_end');
      });
      await knex.schema.createTable('sync_runs', (t) => {
        t.bigIncrements('id').primary();
        t.string('provider', 32).notNullable();
        t.string('kind', 16).notNullable();
        t.bigInteger('started_at').notNullable();
        t.bigInteger('finished_at').notNullable();
        t.boolean('ok').notNullable();
        t.text('error');
        t.integer('jobs_seen').notNullable().defaultTo(0);
        t.integer('jobs_changed').notNullable().defaultTo(0);
        t.integer('backends_seen').notNullable().defaultTo(0);
        t.index(['provider', 'started_at']);
      });
    },
    async down(knex) {
      for (const t of [
        'sync_runs',
        'usage_snapshots',
        'job_transitions',
        'jobs',
        'backend_snapshots',
        'backends',
        'providers',
      ]) {
        await knex.schema.dropTable(t);
      }
    },
  },
  '002_outbox': outboxMigration,
  // Several keys per provider (account), IBM's billing finality, and when a job's own record
  // (IBM /metrics) was last read.
  '003_accounts_billing': {
    async up(knex) {
      await knex.schema.alterTable('jobs', (t) => {
        t.string('account', 64);
        t.boolean('billing_final').notNullable().defaultTo(false);
        t.bigInteger('details_checked_at');
        t.index(['account', 'status']);
      });
      await knex('jobs').update({ account: knex.ref('provider') });
      // IonQ bills with the job; IBM rows from before are re-read until IBM says complete.
      await knex('jobs')
        .where({ provider: 'ionq' })
        .whereIn('status', ['completed', 'failed', 'cancelled'])
        .update({ billing_final: true });
      await knex.schema.alterTable('providers', (t) => {
        t.string('provider', 32);
        t.bigInteger('last_full_read_at');
      });
      await knex('providers').update({ provider: knex.ref('name') });
    },
    async down(knex) {
      await knex.schema.alterTable('jobs', (t) => {
        t.dropIndex(['account', 'status']);
        t.dropColumn('account');
        t.dropColumn('billing_final');
        t.dropColumn('details_checked_at');
      });
      await knex.schema.alterTable('providers', (t) => {
        t.dropColumn('provider');
        t.dropColumn('last_full_read_at');
      });
    },
  },
  // A job whose own record could not be read (or said too little) is tried again later, with
  // a growing wait and a bounded number of times (sync-loop.ts readDetails).
  '004_detail_retries': {
    async up(knex) {
      await knex.schema.alterTable('jobs', (t) => {
        t.integer('details_attempts').notNullable().defaultTo(0);
        t.bigInteger('details_retry_at');
        t.index(['details_retry_at']);
      });
    },
    async down(knex) {
      await knex.schema.alterTable('jobs', (t) => {
        t.dropIndex(['details_retry_at']);
        t.dropColumn('details_attempts');
        t.dropColumn('details_retry_at');
      });
    },
  },
  // Secrets the replicas of one deployment share through their database: the live relay's
  // HMAC key (sync/hub-relay.ts), made once here so every replica reads the same one.
  '005_replica_secrets': {
    async up(knex) {
      await knex.schema.createTable('replica_secrets', (t) => {
        t.string('name', 64).primary();
        t.string('secret', 128).notNullable();
      });
      await knex('replica_secrets').insert({
        name: 'live-relay',
        secret: randomBytes(32).toString('base64url'),
      });
    },
    async down(knex) {
      await knex.schema.dropTable('replica_secrets');
    },
  },
};
