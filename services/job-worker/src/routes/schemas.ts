import { z } from 'zod';
import { JOB_STATUSES } from '../domain/job';
import { LOG_LINE_MAX } from '../storage/job-logs';

const instant = z.union([
  z.number().int().nonnegative(),
  z.string().transform((v, ctx) => {
    const ms = /^\d+$/.test(v) ? Number(v) : Date.parse(v);
    if (!Number.isFinite(ms)) {
      ctx.addIssue({ code: 'custom', message: 'must be epoch ms or ISO 8601' });
      return z.NEVER;
    }
    return ms;
  }),
]);

export const newJobSchema = z
  .object({
    job_id: z
      .string()
      .regex(/^[A-Za-z0-9][\w.-]{0,63}$/, 'job_id: 1-64 letters, digits, _ . -')
      .optional(),
    task_type: z.string().regex(/^[\w.:-]{1,128}$/, 'task_type: 1-128 letters, digits, _ . : -'),
    params: z.record(z.string(), z.unknown()).default({}),
    priority: z.number().int().min(-1000).max(1000).default(0),
    max_retries: z.number().int().min(0).max(100).default(3),
    created_by: z.string().max(128).nullable().optional(),
    run_at: instant.optional(),
    // A seed JobRecord as its clients send it: a new job is queued, at 0 %, with nothing out yet.
    status: z
      .literal('queued', { error: 'a new job is queued; leave status out or send "queued"' })
      .optional(),
    progress: z.literal(0, { error: 'a new job starts at progress 0' }).optional(),
    output: z.null({ error: 'a new job has no output yet' }).optional(),
    error_message: z.null({ error: 'a new job has no error' }).optional(),
    // The rest of a full record: a new job has not started, ended or been retried; its creation
    // time is the server's (a sent one is read as a record's, and not kept).
    started_at: z.null({ error: 'a new job has not started' }).optional(),
    completed_at: z.null({ error: 'a new job has not ended' }).optional(),
    retry_count: z.literal(0, { error: 'a new job has not been retried' }).optional(),
    created_at: z.union([z.null(), instant]).optional(),
  })
  .strict();

export const batchSchema = z.object({ jobs: z.array(newJobSchema).min(1).max(1000) }).strict();

export const listQuery = z
  .object({
    status: z.enum(JOB_STATUSES as [string, ...string[]]).optional(),
    task_type: z.string().max(128).optional(),
    created_by: z.string().max(128).optional(),
    limit: z.coerce.number().int().min(1).max(500).default(100),
    offset: z.coerce.number().int().min(0).default(0),
  })
  .strict();

/** GET /jobs/stats/completed: up to 31 days back, buckets of 1 s to 1 day. */
export const completedSeriesQuery = z
  .object({
    minutes: z.coerce
      .number()
      .int()
      .min(1)
      .max(31 * 24 * 60)
      .default(60),
    bucket_s: z.coerce.number().int().min(1).max(86_400).default(60),
  })
  .strict();

const workerId = z.string().regex(/^[\w.:@-]{1,128}$/, 'worker_id: 1-128 safe characters');

export const claimSchema = z
  .object({
    worker_id: workerId,
    task_types: z.array(z.string().max(128)).min(1).max(100),
    lease_ms: z.number().int().min(1000).max(3_600_000).optional(),
    /** Claim up to this many at once; the answer is then {jobs: [...]}. */
    max: z.number().int().min(1).max(100).optional(),
  })
  .strict();

export const leaseSchema = z.object({ worker_id: workerId, attempt: z.number().int().min(1) });
export const heartbeatSchema = leaseSchema
  .extend({ progress: z.number().min(0).max(100).optional() })
  .strict();
export const completeSchema = leaseSchema
  .extend({ output: z.record(z.string(), z.unknown()).nullable().default({}) })
  .strict();
/** PATCH /jobs/{id}: progress and output, by the lease holder (worker_id + attempt) or an admin. */
export const patchSchema = z
  .object({
    progress: z.number().min(0).max(100).optional(),
    output: z.record(z.string(), z.unknown()).nullable().optional(),
    worker_id: workerId.optional(),
    attempt: z.number().int().min(1).optional(),
  })
  .strict()
  .refine((b) => b.progress !== undefined || b.output !== undefined, 'send progress, output or both')
  .refine(
    (b) => (b.worker_id === undefined) === (b.attempt === undefined),
    'worker_id and attempt go together',
  );

export const failSchema = leaseSchema.extend({ error: z.string().min(1).max(10_000) }).strict();

/** POST /jobs/retry-failed: every failed job, or those of one task type. */
export const retryFailedSchema = z.strictObject({ task_type: z.string().min(1).max(200).optional() });

/** POST /jobs/{id}/logs: lines from the worker holding the job (the pool cuts them to size first). */
export const appendLogsSchema = leaseSchema
  .extend({ lines: z.array(z.string().max(LOG_LINE_MAX)).min(1).max(1000) })
  .strict();

/** GET /jobs/{id}/logs: a page of lines after a seq from an earlier page. */
export const logsQuery = z.strictObject({
  after: z.coerce.number().int().min(0).default(0),
  limit: z.coerce.number().int().min(1).max(1000).default(500),
});
