import { startServiceEvents } from '@qlab/events';
import {
  createLogger,
  Lifecycle,
  listen,
  openDatabase,
  parseDbUrl,
  privateDir,
  runMain,
  stopOnSignals,
} from '@qlab/kit';
import { createApp } from './app';
import { loadServerConfig } from './config';
import { JobRepository } from './storage/job-repository';
import { migrations } from './storage/migrations';
import { JobWorkspace } from './storage/workspace';
import { LocalJobSource } from './worker/local-source';
import { startWorkerPool } from './worker/start-pool';

runMain('job-worker', async () => {
  const config = loadServerConfig();
  const logger = createLogger({ service: 'job-worker', level: config.logLevel });
  const life = new Lifecycle(logger);
  stopOnSignals(life, logger, 60_000);
  privateDir(config.storageDir);

  const knex = await openDatabase({ target: parseDbUrl(config.dbUrl), migrations, logger });
  life.add('database', () => knex.destroy());
  const events = startServiceEvents({
    service: 'job-worker',
    knex,
    mqttUrl: config.mqttUrl,
    logger,
    lifecycle: life,
  });
  const repo = new JobRepository(knex, events?.outbox);
  life.add('queue connection', () => repo.close());
  const workspace = new JobWorkspace(config.storageDir);

  // Jobs whose worker died go back to the queue once their lease is over.
  // With JOBS_RETENTION, finished jobs past it go too, with their folders.
  const sweeper = setInterval(
    () => {
      repo.requeueExpired().catch((err) => logger.warn({ err }, 'lease sweep failed'));
      if (config.retentionMs > 0) {
        repo
          .pruneFinished(Date.now() - config.retentionMs)
          .then((ids) => Promise.all(ids.map((id) => workspace.remove(id))))
          .catch((err) => logger.warn({ err }, 'retention sweep failed'));
      }
    },
    Math.max(500, Math.floor(config.leaseMs / 4)),
  );
  sweeper.unref();
  life.add('lease sweeper', () => clearInterval(sweeper));

  const app = createApp({
    logger,
    repo,
    workspace,
    apiToken: config.apiToken,
    leaseMs: config.leaseMs,
    maxFileBytes: config.maxFileBytes,
    readiness: async () => {
      await knex.raw('select 1');
    },
  });
  const server = await listen(app, { port: config.port, host: config.host });
  life.add('http server', () => server.close());

  if (config.worker.concurrency > 0 && config.worker.taskTypes?.length !== 0) {
    // Started last, so it drains first on SIGTERM, while the database is still open.
    startWorkerPool({
      source: new LocalJobSource(repo, workspace, config.leaseMs),
      settings: config.worker,
      calibrationStore: config.calibrationStore,
      logger,
      lifecycle: life,
    });
  }
  logger.info({ url: server.url, storageDir: config.storageDir }, 'job-worker listening');
});
