import type { z } from 'zod';

/**
 * What a built-in task declares beside its handler: the API checks a new job's params against
 * `params` (declared fields only; others pass, as the seed's free-form params did) and serves the
 * lot at GET /jobs/task-types, from which the console builds its "new job" form.
 */
export interface TaskSpec {
  description: string;
  /** Whether the job needs input files (multipart creation), may have them, or takes none. */
  inputs: 'required' | 'optional' | 'none';
  params: z.ZodObject;
}
