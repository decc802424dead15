import path from 'node:path';
import { Outbox } from '@qlab/events';
import { type Knex, type Listening, listen, openDatabase, parseDbUrl, silentLogger } from '@qlab/kit';
import { pgSchemaUrl, tempDir } from '@qlab/testkit';
import { type ComposedTracker, compose } from '../src/compose';
import { loadTrackerConfig } from '../src/config';
import { trackerEvents } from '../src/events';
import { providerClients } from '../src/providers';
import { migrations } from '../src/storage/migrations';
import type { FakeIbm, FakeIonq } from './fake-providers';

export interface RunningTracker {
  url: string;
  knex: Knex;
  tracker: ComposedTracker['tracker'];
  server: Listening;
  close(): Promise<void>;
}

export interface TrackerTestOptions {
  ibm?: FakeIbm;
  /** IBM_QUANTUM_TOKEN as a user would set it (default the fake's main key). */
  ibmToken?: string;
  ionq?: FakeIonq;
  /** Extra environment, as in production (IONQ_ORGANIZATION_ID, TRACKER_DETAILS_PER_SYNC, …). */
  env?: NodeJS.ProcessEnv;
  apiToken?: string;
  price?: number;
  /** Run on PostgreSQL (a schema of its own) instead of a SQLite file. */
  pgUrl?: string;
  now?: () => number;
}

/**
 * The tracker as main.ts builds it, from environment variables through loadTrackerConfig, its
 * providers reaching the fakes at the real host names (the fakes' fetch).
 */
export async function startTracker(options: TrackerTestOptions = {}): Promise<RunningTracker> {
  const tmp = tempDir('qlab-tracker-');
  const pg = options.pgUrl ? pgSchemaUrl(options.pgUrl) : undefined;
  const knex = await openDatabase({
    target: parseDbUrl(pg ? pg.url : path.join(tmp.dir, 'tracker.db')),
    migrations,
  });
  const config = loadTrackerConfig({
    ...(options.ibm
      ? { IBM_QUANTUM_TOKEN: options.ibmToken ?? options.ibm.apiKey, IBM_QUANTUM_INSTANCE: options.ibm.crn }
      : {}),
    ...(options.ionq
      ? { IONQ_API_KEY: options.ionq.apiKey, IONQ_API_URL: options.ionq.url, IONQ_QUEUE_TIME_UNIT_MS: '1' }
      : {}),
    ...options.env,
  });
  const fetchFor = (url: string) => (options.ibm && !url.includes('127.0.0.1') ? options.ibm.fetch : fetch);
  const clients = providerClients(config, {
    fetch: (input, init) => fetchFor(String(input instanceof Request ? input.url : input))(input, init),
    now: options.now,
  });
  const composed = await compose(
    { ...config, pricePerQuantumSecond: options.price ?? 1.6, currency: 'USD', apiToken: options.apiToken },
    { knex, clients, outbox: new Outbox(trackerEvents), logger: silentLogger(), now: options.now },
  );
  const { tracker } = composed;
  const server = await listen(composed.handle, { port: 0, graceMs: 0 });
  composed.attach(server.server);
  return {
    url: server.url,
    knex,
    tracker,
    server,
    async close() {
      await composed.stop();
      await server.close();
      if (pg) await knex.raw('drop schema if exists ?? cascade', [pg.schema]).catch(() => undefined);
      await knex.destroy();
      tmp.cleanup();
    },
  };
}

// biome-ignore lint/suspicious/noExplicitAny: tests read whatever JSON came back.
export async function get(url: string, init?: RequestInit): Promise<{ status: number; body: any }> {
  const res = await fetch(url, init);
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

export const post = (url: string) => get(url, { method: 'POST' });

export const isoAgo = (minutes: number) => new Date(Date.now() - minutes * 60_000).toISOString();
