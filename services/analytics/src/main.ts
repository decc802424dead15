import { eventsHealth, startServiceEvents } from '@qlab/events';
import { createLogger, Lifecycle, listen, runMain, stopOnSignals } from '@qlab/kit';
import { createApp } from './app';
import { loadAnalyticsConfig, USAGE } from './config';
import { openDomain, prepareDbLocation } from './open-domain';

runMain('analytics', async () => {
  const config = loadAnalyticsConfig(process.argv.slice(2), process.env);
  if (!config) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const service = `analytics-${config.domain}`;
  const logger = createLogger({ service, level: config.logLevel });
  const life = new Lifecycle(logger);
  stopOnSignals(life, logger);

  prepareDbLocation(config.dbPath, config.dataDir);
  let kick: () => void = () => undefined;
  const domain = await openDomain(config, () => kick());
  life.add('duckdb', async () => domain.db.close());
  const events = startServiceEvents({
    service,
    source: domain.outbox,
    mqttUrl: config.mqttUrl,
    logger,
    lifecycle: life,
  });
  if (events) kick = () => events.publisher.kick();

  const app = createApp({
    logger,
    ...domain,
    apiToken: config.apiToken,
    maxBulkBytes: config.maxBulkBytes,
    loadTimeoutMs: config.loadTimeoutMs,
    readiness: async () => {
      await domain.db.query('SELECT 1');
    },
    health: () => ({
      db: config.dbPath,
      auth: config.apiToken ? 'bearer' : 'open',
      events: eventsHealth(events),
    }),
  });
  const server = await listen(app, { port: config.port, host: config.host });
  life.add('http server', () => server.close());
  logger.info({ url: server.url, domain: config.domain, db: config.dbPath }, `${service} listening`);
});
