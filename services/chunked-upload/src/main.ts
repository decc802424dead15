import { Outbox, OutboxPublisher } from '@qlab/events';
import {
  ConfigError,
  createLogger,
  Lifecycle,
  listen,
  openDatabase,
  parseDbUrl,
  stopOnSignals,
} from '@qlab/kit';
import { generatedKey } from './api-keys';
import { createApp } from './app';
import { loadUploadConfig } from './config';
import { DataFiles } from './storage/data-files';
import { migrations } from './storage/migrations';
import { UploadStore } from './storage/upload-store';

async function main(): Promise<void> {
  const config = loadUploadConfig();
  const logger = createLogger({ service: 'chunked-upload', level: config.logLevel });
  const life = new Lifecycle(logger);
  stopOnSignals(life, logger);

  const knex = await openDatabase({ target: parseDbUrl(config.dbUrl), migrations, logger });
  life.add('database', () => knex.destroy());
  const files = new DataFiles(config.dataDir, config.uploadDir);
  await files.init();

  let apiKeys = config.apiKeys;
  if (!apiKeys) {
    const key = await generatedKey(config.dataDir);
    apiKeys = [key];
    logger.warn(
      { apiKey: key, file: `${config.dataDir}/generated-api-key` },
      'UPLOAD_API_KEYS is not set: using a generated API key',
    );
  }

  let outbox: Outbox | undefined;
  if (config.mqttUrl) {
    const publisher = new OutboxPublisher({
      knex,
      mqttUrl: config.mqttUrl,
      clientId: `chunked-upload-${process.pid}`,
      logger,
    });
    publisher.start();
    life.add('event publisher', () => publisher.stop());
    outbox = new Outbox('chunked-upload', () => publisher.kick());
  } else {
    logger.warn('MQTT_URL is not set: events are off');
  }

  let port = config.port;
  const { app, service } = createApp({
    logger,
    store: new UploadStore(knex),
    files,
    outbox,
    apiKeys,
    policy: { pathMode: config.pathMode, maxBytes: config.maxBytes, expireAfterMs: config.expireAfterMs },
    port: () => port,
    readiness: async () => {
      await knex.raw('select 1');
    },
  });

  // Unfinished uploads past their expiry lose their bytes; checked a few times per window.
  const sweepEvery = Math.min(Math.max(config.expireAfterMs / 4, 1000), 60_000);
  const sweeper = setInterval(() => {
    service.sweepExpired().catch((err) => logger.warn({ err }, 'expiry sweep failed'));
  }, sweepEvery);
  sweeper.unref();
  life.add('expiry sweeper', () => clearInterval(sweeper));

  const server = await listen(app, { port: config.port, host: config.host });
  port = server.port;
  life.add('http server', () => server.close());
  logger.info(
    { url: server.url, uploadDir: config.uploadDir, pathMode: config.pathMode },
    'chunked-upload listening',
  );
}

main().catch((err) => {
  if (err instanceof ConfigError) {
    process.stderr.write(`chunked-upload: ${err.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`chunked-upload failed to start: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
