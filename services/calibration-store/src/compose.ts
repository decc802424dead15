import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { type BlobStore, openBlobStore } from '@qlab/blob-store';
import type { Outbox } from '@qlab/events';
import type { Knex, Logger } from '@qlab/kit';
import { createApp } from './app';
import type { Config } from './config';
import type { CalibrationEvents } from './events';
import { ArchiveBlobs } from './storage/archive-blobs';
import { KnexMetadataStore } from './storage/metadata-store';

/** What the store is built from (main.ts passes its config; tests give their own). */
export type StoreSettings = Pick<
  Config,
  'dataDir' | 'apiToken' | 'adminToken' | 'maxUploadBytes' | 'jsonDownloadMaxBytes'
> &
  Partial<Pick<Config, 'blobStoreUrl'>>;

export interface StoreDeps {
  /** The metadata database, migrated. */
  knex: Knex;
  logger: Logger;
  outbox?: Outbox<CalibrationEvents>;
  /** The archives' blob store; default: the one `blobStoreUrl` names (files under dataDir). */
  blobStore?: BlobStore;
  /** Extra fields for /health (main adds auth and event state). */
  health?: () => Record<string, unknown>;
}

export type ComposedStore = Awaited<ReturnType<typeof compose>>;

/**
 * The one composition root of calibration-store: the blob store, the metadata store and the
 * HTTP app. main.ts and the tests build the store here.
 */
export async function compose(settings: StoreSettings, deps: StoreDeps) {
  const { knex } = deps;
  // Uploads are received and checked in a local temp folder, whatever holds the archives.
  const blobs = new ArchiveBlobs(
    deps.blobStore ?? (await openBlobStore(settings.blobStoreUrl ?? pathToFileURL(settings.dataDir).href)),
    path.join(settings.dataDir, 'tmp'),
  );
  await blobs.init();
  const app = createApp({
    logger: deps.logger,
    store: new KnexMetadataStore(knex),
    knex,
    blobs,
    outbox: deps.outbox,
    apiToken: settings.apiToken,
    adminToken: settings.adminToken,
    maxUploadBytes: settings.maxUploadBytes,
    jsonDownloadMaxBytes: settings.jsonDownloadMaxBytes,
    readiness: async () => {
      await knex.raw('select 1');
    },
    health: deps.health,
  });
  return { app, blobs };
}
