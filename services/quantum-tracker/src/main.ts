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
import { compose } from './compose';
import { loadTrackerConfig } from './config';
import { trackerEvents } from './events';
import { migrations } from './storage/migrations';

runMain('quantum-tracker', async () => {
  const config = loadTrackerConfig(process.env);
  const logger = createLogger({ service: 'quantum-tracker', level: config.logLevel });
  const life = new Lifecycle(logger);
  stopOnSignals(life, logger);
  privateDir(config.dataDir);

  const knex = await openDatabase({ target: parseDbUrl(config.dbUrl), migrations, logger });
  life.add('database', () => knex.destroy());
  const events = startServiceEvents({
    catalogue: trackerEvents,
    knex,
    mqttUrl: config.mqttUrl,
    logger,
    lifecycle: life,
  });
  const composed = await compose(config, { knex, outbox: events?.outbox, logger });
  const { clients } = composed;
  if (config.aliasesUsed.length > 0)
    logger.info(
      { aliases: config.aliasesUsed },
      'read the seed tracker’s variables (the qlab names win when both are set)',
    );
  for (const c of clients)
    logger.info(
      { account: c.name, baseUrl: c.baseUrl, region: c.region, backends: c.readsBackends },
      `provider ${c.name}`,
    );
  if (clients.length === 0) {
    logger.warn(
      'no quantum provider is configured (IBM_QUANTUM_TOKEN + IBM_QUANTUM_INSTANCE, or IONQ_API_KEY): serving no data',
    );
  }

  const server = await listen(composed.handle, { port: config.port, host: config.host });
  composed.attach(server.server);
  life.add('websockets and syncs', () => composed.stop());
  life.add('http server', () => server.close());
  composed.start();
  logger.info({ url: server.url, providers: clients.map((c) => c.name) }, 'quantum-tracker listening');
});
