import { createLogger, Lifecycle, runMain, stopOnSignals } from '@qlab/kit';
import { loadRemoteWorkerConfig } from './config';
import { builtInHandlers } from './worker/handlers';
import { HttpJobSource } from './worker/http-source';
import { WorkerPool } from './worker/pool';

/** A worker on any host: claims jobs from the job-worker API at JOBS_URL. SIGTERM drains it. */
runMain('job-worker (worker)', async () => {
  const config = loadRemoteWorkerConfig();
  const logger = createLogger({ service: 'job-worker-worker', level: config.logLevel });
  const life = new Lifecycle(logger);
  // Draining waits for running jobs: allow them time.
  stopOnSignals(life, logger, 10 * 60_000);
  const pool = new WorkerPool({
    source: new HttpJobSource(config.jobsUrl, config.token, config.leaseMs),
    handlers: builtInHandlers({ calibrationStore: config.calibrationStore }),
    taskTypes: config.worker.taskTypes,
    concurrency: config.worker.concurrency,
    pollIntervalMs: config.worker.pollIntervalMs,
    workerId: config.worker.workerId,
    logger,
  });
  pool.start();
  life.add('worker pool', () => pool.stop());
  logger.info({ jobsUrl: config.jobsUrl, workerId: pool.workerId }, 'worker running');
});
