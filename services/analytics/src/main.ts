import { eventsHealth, startServiceEvents } from '@qlab/events';
import { createLogger, Lifecycle, listen, runMain, stopOnSignals } from '@qlab/kit';
import { compose } from './compose';
import { loadAnalyticsConfig, USAGE } from './config';
import { prepareDbLocation } from './open-domain';

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
  const { app, domain, close } = await compose(config, {
    logger,
    onEvent: () => kick(),
    health: () => ({
      db: config.dbPath,
      auth: config.apiToken ? 'bearer' : 'open',
      events: eventsHealth(events),
    }),
  });
  life.add('duckdb', async () => close());
  const events = startServiceEvents({
    catalogue: domain.writes.events,
    source: domain.outbox,
    mqttUrl: config.mqttUrl,
    logger,
    lifecycle: life,
  });
  if (events) kick = () => events.publisher.kick();

  const server = await listen(app, { port: config.port, host: config.host });
  life.add('http server', () => server.close());
  logger.info({ url: server.url, domain: config.domain, db: config.dbPath }, `${service} listening`);
});
