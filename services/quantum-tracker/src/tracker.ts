import type { Outbox } from '@qlab/events';
import type { Knex, Logger } from '@qlab/kit';
import type { TrackerEvents } from './events';
import type { ProviderClient } from './providers/types';
import { TrackerQueries } from './storage/queries';
import { Recorder } from './storage/recorder';
import { LiveHub } from './sync/hub';
import { SyncLeadership } from './sync/sync-leadership';
import { ProviderSync } from './sync/sync-loop';

/** The tracker's parts for a database and a set of provider clients (main and tests build it the same way). */
export async function buildTracker(options: {
  knex: Knex;
  clients: ProviderClient[];
  outbox?: Outbox<TrackerEvents>;
  logger: Logger;
  syncIntervalMs: number;
  /** See TRACKER_DETAILS_PER_SYNC. */
  detailsPerSync?: number;
  now?: () => number;
  /** Election timing (tests shorten it). */
  leadership?: { campaignMs?: number; heartbeatMs?: number };
}) {
  const { knex, clients } = options;
  for (const c of clients) {
    const exists = await knex('providers').where({ name: c.name }).first();
    if (!exists) await knex('providers').insert({ name: c.name, provider: c.provider, region: c.region });
  }
  const hub = new LiveHub();
  hub.setMaxListeners(100);
  const recorder = new Recorder(knex, options.outbox, options.now);
  const syncs = clients.map(
    (client) =>
      new ProviderSync(client, {
        knex,
        recorder,
        outbox: options.outbox,
        hub,
        logger: options.logger,
        intervalMs: options.syncIntervalMs,
        detailsPerSync: options.detailsPerSync,
        now: options.now,
      }),
  );
  const leadership = new SyncLeadership(knex, syncs, options.logger, options.leadership);
  return { hub, recorder, syncs, leadership, queries: new TrackerQueries(knex, options.now) };
}
