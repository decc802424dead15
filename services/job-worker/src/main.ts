import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { type BlobStore, openBlobStore } from '@qlab/blob-store';
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
  sweepExpiredKeysEvery,
} from '@qlab/kit';
import { compose } from './compose';
import { loadServerConfig } from './config';
import { jobEvents } from './events';
import { startSeedBroadcast } from './seed-broadcast';
import { migrations } from './storage/migrations';
import { LocalJobSource } from './worker/local-source';
import { startWorkerPool } from './worker/start-pool';

runMain('job-worker', async () => {
  const config = loadServerConfig();
  const logger = createLogger({ service: 'job-worker', level: config.logLevel });
  const life = new Lifecycle(logger);
  stopOnSignals(life, logger, 60_000);
  if (config.aliasesUsed.length > 0)
    logger.info({ seedSettings: config.aliasesUsed }, "read the seed's settings");
  for (const name of config.unreadSettings)
    logger.warn(
      { setting: name },
      `${name} looks like a job-worker setting but nothing reads it (see the README's configuration table)`,
    );
  // Our own folder is made private; one the operator named elsewhere (the seed's
  // MEDIA_STORAGE_DIR) keeps its permissions, and is created 0700 only when it is missing.
  if (config.storageDir === config.dataDir) privateDir(config.storageDir);
  else mkdirSync(config.storageDir, { recursive: true, mode: 0o700 });

  const knex = await openDatabase({
    target: parseDbUrl(config.dbUrl),
    migrations,
    logger,
    // cl-server-shared's store has a jobs table of its own: its STORE_DATABASE_URL names qlab's
    // database only when that is a new one.
    foreignTables: {
      names: ['jobs', 'queue_entries'],
      hint: "qlab keeps its queue in its own tables: set JOBS_DB_URL (or the seed's STORE_DATABASE_URL) to a new database",
    },
  });
  life.add('database', () => knex.destroy());
  // Idempotency-Keys older than 24 h, at start and hourly, in small batches outside requests.
  life.add('Idempotency-Key sweep', sweepExpiredKeysEvery(knex, logger));
  const events = startServiceEvents({
    catalogue: jobEvents,
    knex,
    mqttUrl: config.mqttUrl,
    logger,
    lifecycle: life,
  });
  if (config.seedTopic && config.mqttUrl) {
    // Never holds the start: a broker that is down is tried again every 5 s.
    const { mqttUrl, seedTopic } = config;
    let relay: Awaited<ReturnType<typeof startSeedBroadcast>> | undefined;
    let stopped = false;
    const connect = (): void => {
      // One relay session per queue and topic on this host: two job-workers on one host (other
      // databases, other topics) must not take over each other's persistent session.
      const clientId = `job-worker-seed-relay-${hostname()}-${createHash('sha256')
        .update(`${config.dbUrl}\n${seedTopic}`)
        .digest('hex')
        .slice(0, 12)}`;
      startSeedBroadcast({ mqttUrl, topic: seedTopic, logger, clientId }).then(
        (r) => {
          if (stopped) void r.close();
          else relay = r;
        },
        (err: unknown) => {
          logger.warn({ err }, 'seed event relay: broker not reachable; trying again in 5 s');
          if (!stopped) setTimeout(connect, 5000).unref();
        },
      );
    };
    connect();
    life.add('seed event relay', async () => {
      stopped = true;
      await relay?.close();
    });
  }
  let blobStore: BlobStore | undefined;
  if (config.blobStoreUrl) {
    blobStore = await openBlobStore(config.blobStoreUrl);
    // Local copies a worker here left behind (the process died mid-job) are of no use now.
    await rm(path.join(config.storageDir, 'work'), { recursive: true, force: true });
  }
  const queue = compose(config, { knex, logger, outbox: events?.outbox, blobStore });
  const { repo, workspace, app } = queue;
  life.add('queue connection', () => queue.close());
  life.add('lease sweeper', queue.startSweeps());

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
  logger.info({ url: server.url, files: workspace.location }, 'job-worker listening');
});
