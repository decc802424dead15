import type { BlobStore } from '@qlab/blob-store';
import type { Outbox } from '@qlab/events';
import { deploymentScope, isPostgres, type Knex, type Logger, pgConnectionString } from '@qlab/kit';
import { createApp } from './app';
import type { Config } from './config';
import { ReplicaUploadLocks } from './domain/replica-locks';
import type { UploadPolicy } from './domain/upload-service';
import type { UploadEvents } from './events';
import { BlobUploadBytes } from './storage/blob-upload-bytes';
import { DataFiles } from './storage/data-files';
import { ServerKeys } from './storage/server-keys';
import { UploadStore } from './storage/upload-store';

/** What the upload service is built from (main.ts maps its Config here; tests give their own). */
export interface UploadSettings {
  dataDir: string;
  uploadDir: string;
  /** Upload bytes here instead of dataDir/uploadDir (BLOB_STORE_URL): replicas share it. */
  blobStore?: BlobStore;
  /** O_DIRECT where the file system allows it (UPLOAD_DIRECT_IO). Default true. */
  directIo?: boolean;
  /** The keys callers may present (main.ts has made one up when none was configured). */
  apiKeys: string[];
  gatewayToken?: string;
  encryption?: Config['encryption'];
  policy: UploadPolicy;
}

export interface UploadDeps {
  /** The sessions database, migrated. */
  knex: Knex;
  logger: Logger;
  outbox?: Outbox<UploadEvents>;
  now?: () => number;
  /** The port actually listened on (for /info), known only after listen. */
  port: () => number;
}

export type ComposedUploads = Awaited<ReturnType<typeof compose>>;

/**
 * The one composition root of chunked-upload: data files, server keys, the store, the HTTP app
 * and the sweeps. main.ts and the tests build the service here.
 */
export async function compose(settings: UploadSettings, deps: UploadDeps) {
  const { logger, knex } = deps;
  const files = settings.blobStore
    ? new BlobUploadBytes(settings.blobStore)
    : new DataFiles(settings.dataDir, settings.uploadDir, settings.directIo ?? true);
  await files.init();
  // On PostgreSQL other replicas may write the same uploads: one writer per upload across them.
  const locks = isPostgres(knex)
    ? new ReplicaUploadLocks(pgConnectionString(knex), deploymentScope(knex), logger)
    : undefined;
  let encryption: ServerKeys | undefined;
  if (settings.encryption) {
    encryption = new ServerKeys({
      dir: settings.encryption.keysDir,
      modulusLength: settings.encryption.keyBits,
      maxKeyAgeMs: settings.encryption.maxKeyAgeMs,
      logger,
      now: deps.now,
    });
    await encryption.init();
  }
  const { app, service } = createApp({
    logger,
    store: new UploadStore(knex),
    files,
    outbox: deps.outbox,
    apiKeys: settings.apiKeys,
    gatewayToken: settings.gatewayToken,
    encryption,
    policy: settings.policy,
    locks,
    port: deps.port,
    now: deps.now,
    readiness: async () => {
      await knex.raw('select 1');
      // The blob store answers too (a listing; bounded by the S3 client's timeouts).
      if (settings.blobStore) await files.init();
    },
  });
  const { policy } = settings;
  return {
    app,
    service,
    files,
    encryption,
    /**
     * Unfinished uploads past their expiry lose their bytes (checked a few times per window), and
     * uploads without a declared total end when idle (a few times per idle window). Returns the
     * function that stops both.
     */
    startSweeps(): () => void {
      const expiry = setInterval(
        () => {
          service
            .sweepExpired()
            .then(() => service.sweepOrphans())
            .catch((err) => logger.warn({ err }, 'expiry sweep failed'));
        },
        Math.min(Math.max(policy.expireAfterMs / 4, 1000), 60_000),
      );
      const idleMs = policy.idleCompleteAfterMs;
      const idle =
        idleMs === undefined
          ? undefined
          : setInterval(
              () => {
                service.sweepIdle().catch((err) => logger.warn({ err }, 'idle-completion sweep failed'));
              },
              Math.min(Math.max(idleMs / 3, 250), 5000),
            );
      expiry.unref();
      idle?.unref();
      return () => {
        clearInterval(expiry);
        clearInterval(idle);
      };
    },
    /** Frees the write buffers and lock connections; the database is the caller's. */
    close: async () => {
      await locks?.close();
      await files.close();
    },
  };
}
