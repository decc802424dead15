import { z } from 'zod';

const text = (max: number) =>
  z
    .string()
    .max(max)
    .refine((s) => !/[\u0000-\u001f\u007f]/.test(s), 'must not contain control characters');

export const hashIdSchema = text(256).trim().min(1, 'is required');
export const resultNameSchema = text(256).trim().min(1, 'is required');

export const calibrationUploadFields = z.object({
  hashID: hashIdSchema,
  notes: z
    .string()
    .max(1024 * 1024)
    .default(''),
});

export const runIdSchema = text(256).trim();

/**
 * A result's run id as clients send it: `runID` (QIBO DB dd6f7cc on), or `experimentID` /
 * `experiment_id` (the version before, 53d3ade). Empty means none.
 */
export function runIdOf(fields: Record<string, unknown>): string | undefined {
  for (const key of ['runID', 'experimentID', 'experiment_id']) {
    const v = fields[key];
    if (typeof v === 'string' && v.trim() !== '') return v.trim();
  }
  return undefined;
}

export const resultUploadFields = calibrationUploadFields.extend({
  name: resultNameSchema,
  runID: runIdSchema.optional(),
  experimentID: runIdSchema.optional(),
  experiment_id: runIdSchema.optional(),
});

export const calibrationSelector = z.object({ hashID: hashIdSchema });
export const resultSelector = z.object({
  hashID: hashIdSchema,
  name: resultNameSchema,
  runID: runIdSchema.optional(),
  experimentID: runIdSchema.optional(),
  experiment_id: runIdSchema.optional(),
});

/** POST /bestruns/set (JSON or form), with QIBO DB's own messages. */
export const bestRunFields = z.object({
  calibrationHashID: z
    .string({ error: 'calibrationHashID is required' })
    .trim()
    .min(1, 'calibrationHashID is required')
    .max(256),
  runID: z.string({ error: 'runID is required' }).trim().min(1, 'runID is required').max(256),
});

/** ?limit= as QIBO DB reads it: default 10, clamped to 1-100, not a number is a 400. */
export const bestRunsLimit = z.object({
  limit: z
    .string()
    .trim()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v === '') return 10;
      if (!/^-?\d+$/.test(v)) {
        ctx.addIssue({ code: 'custom', message: 'limit must be an integer' });
        return z.NEVER;
      }
      return Math.min(100, Math.max(1, Number(v)));
    }),
});

/** An ISO 8601 date/time or epoch milliseconds, as epoch milliseconds. */
const instant = z.string().transform((value, ctx) => {
  const ms = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
  if (!Number.isFinite(ms)) {
    ctx.addIssue({ code: 'custom', message: 'must be an ISO 8601 date/time or epoch milliseconds' });
    return z.NEVER;
  }
  return ms;
});

export const MAX_PAGE = 1000;

export const listQuery = z
  .object({
    hashID: hashIdSchema.optional(),
    name: resultNameSchema.optional(),
    runID: runIdSchema.optional(),
    since: instant.optional(),
    until: instant.optional(),
    /** Absent: every item, streamed (the seed returns every row). */
    limit: z.coerce.number().int().min(1).max(MAX_PAGE).optional(),
    offset: z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER).default(0),
  })
  .strict();

export const latestQuery = z
  .object({ hashID: hashIdSchema.optional(), name: resultNameSchema.optional() })
  .strict();

export const idParam = z.object({
  id: z
    .string()
    .regex(/^\d{1,15}$/, 'must be a positive integer')
    .transform(Number),
});

/** GET /{calibrations,results}/{id}/entries: a page of the archive's entries. */
export const entriesQuery = z.strictObject({
  offset: z.coerce.number().int().min(0).max(1_000_000).default(0),
  limit: z.coerce.number().int().min(1).max(10_000).default(1000),
});
