import { defineEvents } from '@qlab/events';
import { z } from 'zod';
import { JOB_STATUSES } from './domain/job';

/** What every job event's data carries (storage/job-events.ts JOB_EVENT_FIELDS, in this order). */
const job = {
  job_id: z.string(),
  task_type: z.string(),
  status: z.enum(JOB_STATUSES as [string, ...string[]]),
  progress: z.number().min(0).max(100).describe('0-100'),
  attempt: z.number().int().min(0).describe('Increments on every claim (the fencing token)'),
};
const data = (extra: z.ZodRawShape = {}) => z.object({ ...job, ...extra }).strict();
const output = z.record(z.string(), z.unknown()).describe("The handler's output, as the job shows it");
const errorMessage = z.string().nullable();

/**
 * Every event job-worker publishes, on `qlab/job-worker/<type>`. The knex paths record them
 * through the outbox (checked against this), the hot paths build the same envelope in JS
 * (SQLite) and SQL (PostgreSQL) from storage/job-events.ts; test/events-engines.test.ts
 * checks both engines' events against this catalogue.
 */
export const jobEvents = defineEvents('job-worker', {
  'job.queued': {
    summary: 'A job was created and waits for a worker.',
    subject: 'jobs/{job_id}',
    data: data(),
  },
  'job.started': {
    summary: 'A worker claimed the job (a new attempt).',
    subject: 'jobs/{job_id}',
    data: data({ worker_id: z.string() }),
  },
  'job.progress': { summary: "The job's progress changed.", subject: 'jobs/{job_id}', data: data() },
  'job.updated': {
    summary: 'A PATCH gave the job an output while it runs (null clears it).',
    subject: 'jobs/{job_id}',
    data: data({ output: output.nullable() }),
  },
  'job.completed': {
    summary: 'The job finished with an output.',
    subject: 'jobs/{job_id}',
    data: data({ output }),
  },
  'job.failed': {
    summary: 'The job failed for the last time (no retries left).',
    subject: 'jobs/{job_id}',
    data: data({ error_message: errorMessage }),
  },
  'job.retrying': {
    summary: 'The job failed and will run again after a backoff.',
    subject: 'jobs/{job_id}',
    data: data({
      error_message: errorMessage,
      retry_count: z.number().int().min(0),
      run_at: z.number().int().describe('Epoch ms: not before this time'),
    }),
  },
  'job.cancelled': { summary: 'The job was cancelled.', subject: 'jobs/{job_id}', data: data() },
});
export type JobEvents = typeof jobEvents.events;
export type JobEventType = keyof JobEvents & string;
