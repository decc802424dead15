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

export const resultUploadFields = calibrationUploadFields.extend({ name: resultNameSchema });

export const calibrationSelector = z.object({ hashID: hashIdSchema });
export const resultSelector = z.object({ hashID: hashIdSchema, name: resultNameSchema });

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
    since: instant.optional(),
    until: instant.optional(),
    limit: z.coerce.number().int().min(1).max(MAX_PAGE).default(MAX_PAGE),
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
