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
import { AnswerCache } from './answer-cache';
import { createApp } from './app';
import { loadTrackerConfig } from './config';
import { withFastAnswers } from './fast-answers';
import { attachLiveSockets } from './live-sockets';
import { providerClients } from './providers';
import { migrations } from './storage/migrations';
import { buildTracker } from './tracker';

runMain('quantum-tracker', async () => {
  const config = loadTrackerConfig(process.env);
  const logger = createLogger({ service: 'quantum-tracker', level: config.logLevel });
  const life = new Lifecycle(logger);
  stopOnSignals(life, logger);
  privateDir(config.dataDir);

  const knex = await openDatabase({ target: parseDbUrl(config.dbUrl), migrations, logger });
  life.add('database', () => knex.destroy());
  const events = startServiceEvents({
    service: 'quantum-tracker',
    knex,
    mqttUrl: config.mqttUrl,
    logger,
    lifecycle: life,
  });
  const clients = providerClients(config);
  const tracker = await buildTracker({
    knex,
    clients,
    outbox: events?.outbox,
    logger,
    syncIntervalMs: config.syncIntervalMs,
    detailsPerSync: config.detailsPerSync,
  });
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

  const cache = new AnswerCache(() => tracker.hub.version);
  const app = createApp({
    logger,
    queries: tracker.queries,
    syncs: tracker.syncs,
    dataVersion: () => tracker.hub.version,
    cache,
    pricePerQuantumSecond: config.pricePerQuantumSecond,
    currency: config.currency,
    apiToken: config.apiToken,
    readiness: async () => {
      await knex.raw('select 1');
    },
  });
  const server = await listen(withFastAnswers(app, cache, config.apiToken), {
    port: config.port,
    host: config.host,
  });
  const sockets = attachLiveSockets(server.server, tracker.hub, config.apiToken);
  life.add('websockets', async () => sockets.close());
  life.add('http server', () => server.close());
  for (const s of tracker.syncs) {
    s.start();
    life.add(`${s.name} sync`, () => s.stop());
  }
  logger.info({ url: server.url, providers: clients.map((c) => c.name) }, 'quantum-tracker listening');
});
