import path from 'node:path';
import type { BlobStore } from '@qlab/blob-store';
import type { Outbox } from '@qlab/events';
import type { Knex, Logger } from '@qlab/kit';
import { createApp } from './app';
import type { ServerConfig } from './config';
import type { JobEvents } from './events';
import { BlobJobFiles } from './storage/blob-job-files';
import { JobLogs } from './storage/job-logs';
import { JobRepository } from './storage/job-repository';
import { type JobFiles, JobWorkspace } from './storage/workspace';

/** What the queue's composition needs of the server's configuration. */
export type QueueSettings = Pick<
  ServerConfig,
  'storageDir' | 'apiToken' | 'leaseMs' | 'maxFileBytes' | 'retentionMs'
>;

export interface QueueDeps {
  /** The queue's database, migrated (main.ts opens it; tests give a temp file or schema). */
  knex: Knex;
  logger: Logger;
  outbox?: Outbox<JobEvents>;
  now?: () => number;
  /** Job files in this store instead of storageDir (BLOB_STORE_URL): API replicas share it. */
  blobStore?: BlobStore;
}

export type ComposedQueue = ReturnType<typeof compose>;

/**
 * The one composition root of the job-worker server: repository (with its engine's hot path),
 * workspaces, the HTTP app and the lease sweep. main.ts and the tests build the queue here.
 */
export function compose(config: QueueSettings, deps: QueueDeps) {
  const { knex, logger } = deps;
  const repo = new JobRepository(knex, deps.outbox, deps.now);
  const logs = new JobLogs(knex, deps.now);
  // In-process workers run blob-stored jobs in local copies under storageDir/work (emptied by main).
  const workspace: JobFiles = deps.blobStore
    ? new BlobJobFiles(deps.blobStore, path.join(config.storageDir, 'work'))
    : new JobWorkspace(config.storageDir);
  const app = createApp({
    logger,
    repo,
    logs,
    workspace,
    apiToken: config.apiToken,
    leaseMs: config.leaseMs,
    maxFileBytes: config.maxFileBytes,
    readiness: async () => {
      await knex.raw('select 1');
    },
  });
  return {
    repo,
    logs,
    workspace,
    app,
    /**
     * Jobs whose worker died go back to the queue once their lease is over; with JOBS_RETENTION,
     * finished jobs past it go too, with their folders. Returns the function that stops it.
     */
    startSweeps(): () => void {
      const sweeper = setInterval(
        () => {
          repo
            .requeueExpired(100, (jobId, err) =>
              logger.error({ err, jobId }, 'lease sweep could not requeue a job'),
            )
            .catch((err) => logger.error({ err }, 'lease sweep failed'));
          if (config.retentionMs > 0) {
            repo
              .pruneFinished(Date.now() - config.retentionMs)
              .then((ids) => Promise.all(ids.map((id) => workspace.remove(id))))
              .catch((err) => logger.warn({ err }, 'retention sweep failed'));
          }
        },
        Math.max(500, Math.floor(config.leaseMs / 4)),
      );
      sweeper.unref();
      return () => clearInterval(sweeper);
    },
    /** Closes the SQLite hot-path connection; the database itself is the caller's. */
    close: () => repo.close(),
  };
}
