import { z } from 'zod';
import { JOB_STATUSES } from '../providers/types';

/** Query and path parameters the resources share. */
export const name = z.string().min(1).max(128);
const when = z.iso.datetime({ offset: true }).transform((s) => Date.parse(s));
export const page = z.object({
  limit: z.coerce.number().int().min(1).max(500).default(50),
  offset: z.coerce.number().int().min(0).max(10_000_000).default(0),
});
export const jobFilters = z.object({
  provider: name.optional(),
  backend: name.optional(),
  status: z.enum(JOB_STATUSES).optional(),
  program: name.optional(),
  user_id: name.optional(),
  since: when.optional(),
  until: when.optional(),
});
export const days = (fallback: number) =>
  z.object({ days: z.coerce.number().int().min(1).max(366).default(fallback) });
export const limitOnly = (fallback: number) =>
  z.object({ limit: z.coerce.number().int().min(1).max(100).default(fallback) });
export const hours = z.object({
  hours: z.coerce
    .number()
    .int()
    .min(1)
    .max(24 * 90)
    .default(24),
});
export const providerParam = z.object({ provider: name.optional() });
