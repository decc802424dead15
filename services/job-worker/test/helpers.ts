import path from 'node:path';
import { type EmbeddedBroker, Outbox, OutboxPublisher } from '@qlab/events';
import { type Knex, type Listening, listen, openDatabase, parseDbUrl, silentLogger } from '@qlab/kit';
import { pgSchemaUrl, tempDir } from '@qlab/testkit';
import { type ComposedQueue, compose } from '../src/compose';
import { type JobEvents, jobEvents } from '../src/events';
import { migrations } from '../src/storage/migrations';
import type { JobWorkspace } from '../src/storage/workspace';

export interface QueueOptions {
  pgUrl?: string;
  now?: () => number;
  broker?: { url: string } | EmbeddedBroker;
  mqttUrl?: string;
  apiToken?: string;
  leaseMs?: number;
  maxFileBytes?: number;
  /** Record events in the outbox with no publisher, so a test can read them there. */
  outboxOnly?: boolean;
}

export interface RunningQueue {
  knex: Knex;
  repo: ComposedQueue['repo'];
  /** Folders under the temp dir: these tests give no blob store. */
  workspace: JobWorkspace;
  dir: string;
  dbUrl: string;
  app: ComposedQueue['app'];
  server: Listening;
  url: string;
  publisher?: OutboxPublisher;
  close(): Promise<void>;
}

/** A job-worker database (SQLite file or a fresh PostgreSQL schema), repository, workspace and API on port 0. */
export async function startQueue(options: QueueOptions = {}): Promise<RunningQueue> {
  const tmp = tempDir('qlab-jobs-');
  const pg = options.pgUrl ? pgSchemaUrl(options.pgUrl) : undefined;
  const dbUrl = pg ? pg.url : path.join(tmp.dir, 'jobs.db');
  const knex = await openDatabase({ target: parseDbUrl(dbUrl), migrations });
  let publisher: OutboxPublisher | undefined;
  let outbox: Outbox<JobEvents> | undefined;
  const mqttUrl = options.mqttUrl ?? options.broker?.url;
  if (mqttUrl) {
    const p = new OutboxPublisher({ knex, mqttUrl, clientId: `jobs-${Math.random()}`, pollMs: 20 });
    p.start();
    publisher = p;
    outbox = new Outbox(jobEvents, () => p.kick());
  } else if (options.outboxOnly) {
    outbox = new Outbox(jobEvents);
  }
  // The queue as main.ts composes it (its sweeps are the tests' to start).
  const { repo, workspace, app } = compose(
    {
      storageDir: tmp.dir,
      apiToken: options.apiToken,
      leaseMs: options.leaseMs ?? 30_000,
      maxFileBytes: options.maxFileBytes ?? 10 * 1024 * 1024,
      retentionMs: 0,
    },
    { knex, logger: silentLogger(), outbox, now: options.now },
  );
  const server = await listen(app, { port: 0, graceMs: 0 });
  return {
    knex,
    repo,
    workspace: workspace as JobWorkspace,
    dir: tmp.dir,
    dbUrl,
    app,
    server,
    url: server.url,
    publisher,
    async close() {
      await server.close();
      await publisher?.stop();
      repo.close();
      if (pg) await knex.raw('drop schema if exists ?? cascade', [pg.schema]);
      await knex.destroy();
      tmp.cleanup();
    },
  };
}
