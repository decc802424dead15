import type { RequestListener, Server } from 'node:http';
import type { Outbox } from '@qlab/events';
import type { Knex, Logger } from '@qlab/kit';
import { AnswerCache } from './answer-cache';
import { createApp } from './app';
import type { Config } from './config';
import type { TrackerEvents } from './events';
import { withFastAnswers } from './fast-answers';
import { attachLiveSockets } from './live-sockets';
import { providerClients } from './providers';
import type { ProviderClient } from './providers/types';
import { buildTracker } from './tracker';

export interface TrackerDeps {
  logger: Logger;
  /** The tracker's database, migrated (main.ts opens it; tests give a temp file or schema). */
  knex: Knex;
  /** The provider clients; by default the ones `config` names (tests give clients reaching fakes). */
  clients?: ProviderClient[];
  outbox?: Outbox<TrackerEvents>;
  now?: () => number;
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
  });
  const cache = new AnswerCache(() => tracker.hub.version);
  const app = createApp({
    logger: deps.logger,
    queries: tracker.queries,
    syncs: tracker.syncs,
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
  let sockets: { close(): void } | undefined;
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
    /** Starts every provider's sync loop. */
    start() {
      for (const s of tracker.syncs) s.start();
    },
    /** Stops the syncs and sockets; the server and database are the caller's to close. */
    async stop() {
      for (const s of tracker.syncs) await s.stop();
      sockets?.close();
    },
  };
}
