import { createLogger, Lifecycle, runMain, stopOnSignals } from '@qlab/kit';
import { loadRemoteWorkerConfig } from './config';
import { HttpJobSource } from './worker/http-source';
import { startWorkerPool } from './worker/start-pool';

/** A worker on any host: claims jobs from the job-worker API at JOBS_URL. SIGTERM drains it. */
runMain('job-worker (worker)', async () => {
  const config = loadRemoteWorkerConfig();
  const logger = createLogger({ service: 'job-worker-worker', level: config.logLevel });
  const life = new Lifecycle(logger);
  // Draining waits for running jobs: allow them time.
  stopOnSignals(life, logger, 10 * 60_000);
  const pool = startWorkerPool({
    source: new HttpJobSource(config.jobsUrl, config.token, config.leaseMs),
    settings: config.worker,
    calibrationStore: config.calibrationStore,
    logger,
    lifecycle: life,
  });
  logger.info({ jobsUrl: config.jobsUrl, workerId: pool.workerId }, 'worker running');
});
