import { eventsHealth, startServiceEvents } from '@qlab/events';
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
import { loadCalibrationConfig, USAGE } from './config';
import { calibrationEvents } from './events';
import { migrations } from './storage/migrations';

runMain('calibration-store', async () => {
  const config = loadCalibrationConfig(process.argv.slice(2), process.env);
  if (!config) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const logger = createLogger({ service: 'calibration-store', level: config.logLevel });
  const life = new Lifecycle(logger);
  stopOnSignals(life, logger);
  privateDir(config.dataDir);

  const knex = await openDatabase({ target: parseDbUrl(config.dbUrl), migrations, logger });
  life.add('database', () => knex.destroy());
  // Idempotency-Keys older than 24 h, at start and hourly, in small batches outside requests.
  life.add('Idempotency-Key sweep', sweepExpiredKeysEvery(knex, logger));
  const events = startServiceEvents({
    catalogue: calibrationEvents,
    knex,
    mqttUrl: config.mqttUrl,
    logger,
    lifecycle: life,
  });

  const { app } = await compose(config, {
    knex,
    logger,
    outbox: events?.outbox,
    health: () => ({
      auth: config.apiToken ? 'bearer' : 'open',
      events: eventsHealth(events),
    }),
  });
  const server = await listen(app, { port: config.port, host: config.host });
  life.add('http server', () => server.close());
  logger.info(
    { url: server.url, auth: config.apiToken ? 'bearer token' : 'open' },
    'calibration-store listening',
  );
});
