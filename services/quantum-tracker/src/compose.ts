import type { RequestListener, Server } from 'node:http';
import type { Outbox } from '@qlab/events';
import { deploymentScope, isPostgres, type Knex, type Logger } from '@qlab/kit';
import { AnswerCache } from './answer-cache';
import { createApp } from './app';
import type { Config } from './config';
import type { TrackerEvents } from './events';
import { withFastAnswers } from './fast-answers';
import { attachLiveSockets } from './live-sockets';
import { providerClients } from './providers';
import type { ProviderClient } from './providers/types';
import { relayHub } from './sync/hub-relay';
import { buildTracker } from './tracker';

export interface TrackerDeps {
  logger: Logger;
  /** The tracker's database, migrated (main.ts opens it; tests give a temp file or schema). */
  knex: Knex;
  /** The provider clients; by default the ones `config` names (tests give clients reaching fakes). */
  clients?: ProviderClient[];
  outbox?: Outbox<TrackerEvents>;
  now?: () => number;
  /** Election timing (tests shorten it). */
  leadership?: { campaignMs?: number; heartbeatMs?: number };
}

export type ComposedTracker = Awaited<ReturnType<typeof compose>>;

/**
 * The one composition root of the tracker: syncs, queries, the app behind its fast path for
 * cached answers, and the live WebSockets. main.ts, the tests and the gateway's tests all build
 * the tracker here, so none runs without a part production has.
 */
export async function compose(config: Config, deps: TrackerDeps) {
  const clients = deps.clients ?? providerClients(config);
  const tracker = await buildTracker({
    knex: deps.knex,
    clients,
    outbox: deps.outbox,
    logger: deps.logger,
    syncIntervalMs: config.syncIntervalMs,
    detailsPerSync: config.detailsPerSync,
    now: deps.now,
    leadership: deps.leadership,
  });
  const { leadership } = tracker;
  const cache = new AnswerCache(() => tracker.hub.version);
  const app = createApp({
    logger: deps.logger,
    queries: tracker.queries,
    syncs: tracker.syncs,
    runSync: (sync, kind) => leadership.sync(sync, kind),
    leading: () => leadership.leading(),
    dataVersion: () => tracker.hub.version,
    cache,
    pricePerQuantumSecond: config.pricePerQuantumSecond,
    currency: config.currency,
    apiToken: config.apiToken,
    readiness: async () => {
      await deps.knex.raw('select 1');
    },
  });
  const handle: RequestListener = withFastAnswers(app, cache, config.apiToken);
  // Replicas share PostgreSQL; on SQLite there is one process and nothing to relay.
  const relaySecret =
    config.mqttUrl && isPostgres(deps.knex)
      ? ((await deps.knex('replica_secrets').where({ name: 'live-relay' }).first()) as { secret: string })
          .secret
      : undefined;
  let sockets: { close(): void } | undefined;
  let relay: { close(): Promise<void> } | undefined;
  return {
    tracker,
    clients,
    /** The request listener: the app behind the fast path for cached answers. */
    handle,
    /** The live WebSockets (/api/v1/ws/*) on a listening server. */
    attach(server: Server) {
      sockets = attachLiveSockets(server, tracker.hub, config.apiToken);
      return sockets;
    },
    /**
     * Starts the sync loops this replica may run (all of them on SQLite; on PostgreSQL those it
     * is elected for) and, with MQTT_URL, the relay that shows every replica's sockets what the
     * syncing replica records.
     */
    start() {
      if (config.mqttUrl && relaySecret)
        relay = relayHub(tracker.hub, {
          mqttUrl: config.mqttUrl,
          scope: deploymentScope(deps.knex),
          secret: relaySecret,
          logger: deps.logger,
        });
      leadership.start();
    },
    /** Stops the syncs, the relay and sockets; the server and database are the caller's to close. */
    async stop() {
      await leadership.stop();
      await relay?.close();
      sockets?.close();
    },
  };
}
