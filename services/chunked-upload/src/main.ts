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
import { generatedKey } from './api-keys';
import { createApp } from './app';
import { loadUploadConfig } from './config';
import { DataFiles } from './storage/data-files';
import { migrations } from './storage/migrations';
import { ServerKeys } from './storage/server-keys';
import { UploadStore } from './storage/upload-store';

runMain('chunked-upload', async () => {
  const config = loadUploadConfig();
  const logger = createLogger({ service: 'chunked-upload', level: config.logLevel });
  const life = new Lifecycle(logger);
  stopOnSignals(life, logger);
  privateDir(config.dataDir);

  const knex = await openDatabase({ target: parseDbUrl(config.dbUrl), migrations, logger });
  life.add('database', () => knex.destroy());
  const files = new DataFiles(config.dataDir, config.uploadDir, config.directIo);
  await files.init();
  life.add('data files', () => files.close());

  let apiKeys = config.apiKeys ?? [];
  if (!config.apiKeys && !config.gatewayToken) {
    // The seed makes up a key; the log shows only its start (logs travel further than files).
    const file = `${config.dataDir}/generated-api-key`;
    const key = await generatedKey(config.dataDir);
    apiKeys = [key];
    logger.warn(
      { file, keyPrefix: `${key.slice(0, 6)}…` },
      'UPLOAD_API_KEYS is not set: using a generated API key (read it from the file)',
    );
  }
  let encryption: ServerKeys | undefined;
  if (config.encryption) {
    encryption = new ServerKeys({
      dir: config.encryption.keysDir,
      modulusLength: config.encryption.keyBits,
      maxKeyAgeMs: config.encryption.maxKeyAgeMs,
      logger,
    });
    await encryption.init();
  }
  const events = startServiceEvents({
    service: 'chunked-upload',
    knex,
    mqttUrl: config.mqttUrl,
    logger,
    lifecycle: life,
  });

  let port = config.port;
  const { app, service } = createApp({
    logger,
    store: new UploadStore(knex),
    files,
    outbox: events?.outbox,
    apiKeys,
    gatewayToken: config.gatewayToken,
    encryption,
    policy: {
      pathMode: config.pathMode,
      windowsSafeNames: config.windowsSafeNames,
      maxBytes: config.maxBytes,
      expireAfterMs: config.expireAfterMs,
      idleCompleteAfterMs: config.idleCompleteAfterMs,
      maxSessionsPerKey: config.maxSessionsPerKey,
      maxOpenBytesPerKey: config.maxOpenBytesPerKey,
    },
    port: () => port,
    readiness: async () => {
      await knex.raw('select 1');
    },
  });

  // Unfinished uploads past their expiry lose their bytes; checked a few times per window.
  const sweepEvery = Math.min(Math.max(config.expireAfterMs / 4, 1000), 60_000);
  const sweeper = setInterval(() => {
    service
      .sweepExpired()
      .then(() => service.sweepOrphans())
      .catch((err) => logger.warn({ err }, 'expiry sweep failed'));
  }, sweepEvery);
  sweeper.unref();
  life.add('expiry sweeper', () => clearInterval(sweeper));

  // Uploads without a declared total end when idle; checked a few times per idle window.
  const idleSweeper = setInterval(
    () => {
      service.sweepIdle().catch((err) => logger.warn({ err }, 'idle-completion sweep failed'));
    },
    Math.min(Math.max(config.idleCompleteAfterMs / 3, 250), 5000),
  );
  idleSweeper.unref();
  life.add('idle sweeper', () => clearInterval(idleSweeper));

  const server = await listen(app, { port: config.port, host: config.host });
  port = server.port;
  life.add('http server', () => server.close());
  logger.info(
    { url: server.url, uploadDir: config.uploadDir, pathMode: config.pathMode, directIo: files.directWrites },
    'chunked-upload listening',
  );
});
