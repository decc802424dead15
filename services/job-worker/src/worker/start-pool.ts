import type { Lifecycle, Logger } from '@qlab/kit';
import { builtInHandlers } from './handlers';
import type { PublishTarget } from './handlers/calibration-publish';
import { WorkerPool } from './pool';
import type { JobSource } from './types';

export interface PoolSettings {
  taskTypes?: string[];
  concurrency: number;
  pollIntervalMs: number;
  workerId: string;
}

/** A pool of the built-in handlers over `source`, started now and drained when the lifecycle stops. */
export function startWorkerPool(options: {
  source: JobSource;
  settings: PoolSettings;
  calibrationStore: PublishTarget;
  logger: Logger;
  lifecycle: Lifecycle;
}): WorkerPool {
  const pool = new WorkerPool({
    source: options.source,
    handlers: builtInHandlers({ calibrationStore: options.calibrationStore }),
    taskTypes: options.settings.taskTypes,
    concurrency: options.settings.concurrency,
    pollIntervalMs: options.settings.pollIntervalMs,
    workerId: options.settings.workerId,
    logger: options.logger,
  });
  pool.start();
  options.lifecycle.add('worker pool', () => pool.stop());
  return pool;
}
