import { outboxMigration } from '@qlab/events';
import { idempotencyKeysMigration, type Migration } from '@qlab/kit';

export const migrations: Record<string, Migration> = {
  '001_jobs': {
    async up(knex) {
      await knex.schema.createTable('jobs', (t) => {
        t.string('job_id', 64).primary();
        t.string('task_type', 128).notNullable();
        t.text('params').notNullable().defaultTo('{}');
        t.string('status', 16).notNullable();
        t.integer('progress').notNullable().defaultTo(0);
        t.text('output');
        t.text('error_message');
        t.bigInteger('created_at').notNullable();
        t.bigInteger('started_at');
        t.bigInteger('completed_at');
        t.integer('retry_count').notNullable().defaultTo(0);
        t.integer('max_retries').notNullable().defaultTo(3);
        t.string('created_by', 128);
        t.integer('priority').notNullable().defaultTo(0);
        t.bigInteger('run_at').notNullable();
        t.string('worker_id', 128);
        t.bigInteger('lease_expires_at');
        t.integer('attempt').notNullable().defaultTo(0);
        t.boolean('cancel_requested').notNullable().defaultTo(false);
        t.text('errors').notNullable().defaultTo('[]');
        t.index(['status', 'lease_expires_at'], 'jobs_lease');
        t.index(['created_at']);
      });
      // Exactly the claim's WHERE and ORDER BY (priority descending), so a claim reads one index
      // entry instead of sorting the backlog.
      await knex.raw(
        'create index jobs_claim on jobs (status, task_type, priority desc, created_at, job_id)',
      );
    },
    async down(knex) {
      await knex.schema.dropTable('jobs');
    },
  },
  '002_outbox': outboxMigration,
  // Idempotency-Key on POST /jobs: a retried create finds its first job (found by pnpm chaos).
  '003_idempotency_keys': idempotencyKeysMigration(),
  // The lines handlers write with log(line), served by GET /jobs/{id}/logs (issue 17).
  '004_job_logs': {
    async up(knex) {
      await knex.schema.createTable('job_logs', (t) => {
        t.increments('seq');
        t.string('job_id', 64).notNullable().references('job_id').inTable('jobs').onDelete('CASCADE');
        t.integer('attempt').notNullable();
        t.bigInteger('at').notNullable();
        t.text('line').notNullable();
        t.index(['job_id', 'seq']);
      });
    },
    async down(knex) {
      await knex.schema.dropTable('job_logs');
    },
  },
  // Finished jobs by time: the completions series (GET /jobs/stats/completed) and pruning.
  '005_jobs_completed_index': {
    async up(knex) {
      await knex.schema.alterTable('jobs', (t) => {
        t.index(['status', 'completed_at'], 'jobs_finished');
      });
    },
    async down(knex) {
      await knex.schema.alterTable('jobs', (t) => {
        t.dropIndex(['status', 'completed_at'], 'jobs_finished');
      });
    },
  },
};
