/**
 * The queue's three busiest changes, one implementation per engine (pg-hot-path.ts,
 * sqlite-hot-path.ts), each a single statement or a single short transaction with its event.
 * Rows are the jobs table's; undefined means the lease is not held (another worker has the job,
 * or the attempt is an old one). Everything else the queue does goes through knex
 * (job-repository.ts).
 */
export interface HotPath {
  claim(
    workerId: string,
    taskTypes: string[],
    now: number,
    leaseMs: number,
    max: number,
  ): Promise<Record<string, unknown>[]>;
  complete(
    id: string,
    workerId: string,
    attempt: number,
    output: string,
    now: number,
  ): Promise<Record<string, unknown> | undefined>;
  heartbeat(
    id: string,
    workerId: string,
    attempt: number,
    leaseUntil: number,
    progress: number | null,
    now: number,
  ): Promise<Record<string, unknown> | undefined>;
  close?(): void;
}
