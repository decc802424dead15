/** The claim order: highest priority, then oldest (job_id breaks ties). The jobs_claim index matches it. */
export const CLAIM_ORDER = 'priority desc, created_at, job_id';

/**
 * The candidates for a claim: one indexed lookup per task type (an IN list would make the
 * database sort every queued row), unioned. Bind each arm with (task_type, now) and, for a
 * bound limit, the limit. `limit` is SQL: a number or `?`; `lock` e.g. FOR UPDATE SKIP LOCKED.
 */
export function claimCandidates(taskTypes: number, limit: string, lock = ''): string {
  const arm = `select * from (select job_id, priority, created_at from jobs
                 where status = 'queued' and task_type = ? and run_at <= ?
                 order by ${CLAIM_ORDER} limit ${limit} ${lock}) as c`;
  return Array.from({ length: taskTypes }, () => arm).join(' union all ');
}
