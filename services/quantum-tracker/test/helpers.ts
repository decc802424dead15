import path from 'node:path';
import { Outbox } from '@qlab/events';
import { type Knex, type Listening, listen, openDatabase, parseDbUrl, silentLogger } from '@qlab/kit';
import { tempDir } from '@qlab/testkit';
import { AnswerCache } from '../src/answer-cache';
import { createApp } from '../src/app';
import { withFastAnswers } from '../src/fast-answers';
import { attachLiveSockets } from '../src/live-sockets';
import { providerClients } from '../src/providers';
import { migrations } from '../src/storage/migrations';
import { buildTracker } from '../src/tracker';
import type { FakeIbm, FakeIonq } from './fake-providers';

export interface RunningTracker {
  url: string;
  knex: Knex;
  tracker: Awaited<ReturnType<typeof buildTracker>>;
  server: Listening;
  close(): Promise<void>;
}

export async function startTracker(
  options: { ibm?: FakeIbm; ionq?: FakeIonq; apiToken?: string; price?: number } = {},
): Promise<RunningTracker> {
  const tmp = tempDir('qlab-tracker-');
  const knex = await openDatabase({ target: parseDbUrl(path.join(tmp.dir, 'tracker.db')), migrations });
  const clients = providerClients({
    ibm: options.ibm
      ? {
          apiKey: options.ibm.apiKey,
          instance: options.ibm.crn,
          apiUrl: `${options.ibm.url}/api`,
          iamUrl: options.ibm.url,
        }
      : undefined,
    ionq: options.ionq
      ? { apiKey: options.ionq.apiKey, apiUrl: options.ionq.url, queueTimeUnitMs: 1 }
      : undefined,
  });
  const tracker = await buildTracker({
    knex,
    clients,
    outbox: new Outbox('quantum-tracker'),
    logger: silentLogger(),
    syncIntervalMs: 60_000,
  });
  const cache = new AnswerCache(() => tracker.hub.version);
  const app = createApp({
    logger: silentLogger(),
    queries: tracker.queries,
    syncs: tracker.syncs,
    dataVersion: () => tracker.hub.version,
    cache,
    pricePerQuantumSecond: options.price ?? 1.6,
    currency: 'USD',
    apiToken: options.apiToken,
  });
  const server = await listen(withFastAnswers(app, cache, options.apiToken), { port: 0, graceMs: 0 });
  const sockets = attachLiveSockets(server.server, tracker.hub, options.apiToken);
  return {
    url: server.url,
    knex,
    tracker,
    server,
    async close() {
      for (const s of tracker.syncs) await s.stop();
      sockets.close();
      await server.close();
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
