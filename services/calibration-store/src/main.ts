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
import { createApp } from './app';
import { loadCalibrationConfig, USAGE } from './config';
import { BlobStore } from './storage/blob-store';
import { KnexMetadataStore } from './storage/metadata-store';
import { migrations } from './storage/migrations';

async function main(): Promise<void> {
  const config = loadCalibrationConfig(process.argv.slice(2), process.env);
  if (!config) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const logger = createLogger({ service: 'calibration-store', level: config.logLevel });
  const life = new Lifecycle(logger);
  stopOnSignals(life, logger);

  const knex = await openDatabase({ target: parseDbUrl(config.dbUrl), migrations, logger });
  life.add('database', () => knex.destroy());
  const blobs = new BlobStore(config.dataDir);
  await blobs.init();

  let outbox: Outbox | undefined;
  let publisher: OutboxPublisher | undefined;
  if (config.mqttUrl) {
    const events = new OutboxPublisher({
      knex,
      mqttUrl: config.mqttUrl,
      clientId: `calibration-store-${process.pid}`,
      logger,
    });
    events.start();
    life.add('event publisher', () => events.stop());
    outbox = new Outbox('calibration-store', () => events.kick());
    publisher = events;
  } else {
    logger.warn('MQTT_URL is not set: events are off');
  }

  const app = createApp({
    logger,
    store: new KnexMetadataStore(knex),
    blobs,
    outbox,
    apiToken: config.apiToken,
    adminToken: config.adminToken,
    maxUploadBytes: config.maxUploadBytes,
    jsonDownloadMaxBytes: config.jsonDownloadMaxBytes,
    readiness: async () => {
      await knex.raw('select 1');
    },
    health: () => ({
      auth: config.apiToken ? 'bearer' : 'open',
      events: publisher ? { connected: publisher.connected, published: publisher.stats.published } : 'off',
    }),
  });
  const server = await listen(app, { port: config.port, host: config.host });
  life.add('http server', () => server.close());
  logger.info(
    { url: server.url, auth: config.apiToken ? 'bearer token' : 'open' },
    'calibration-store listening',
  );
}

main().catch((err) => {
  if (err instanceof ConfigError) {
    process.stderr.write(`calibration-store: ${err.message}\n`);
    process.exit(2);
  }
  process.stderr.write(
    `calibration-store failed to start: ${err instanceof Error ? err.stack : String(err)}\n`,
  );
  process.exit(1);
});
