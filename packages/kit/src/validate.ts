import type { z } from 'zod';
import { AppError } from './errors';

/** Parses untrusted input with a zod schema; a failure is a 400 naming every bad field. */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown, where = 'request'): z.infer<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const problems = result.error.issues.map((i) => ({ field: i.path.join('.') || where, message: i.message }));
  throw new AppError(
    400,
    'INVALID_INPUT',
    `invalid ${where}: ${problems.map((p) => `${p.field}: ${p.message}`).join('; ')}`,
    { errors: problems },
  );
}
