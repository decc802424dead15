import { type Outbox, serviceAsyncApi } from '@qlab/events';
import { bearerAuth, createServiceApp, IdempotencyKeys, type Knex, type Logger } from '@qlab/kit';
import type { Express } from 'express';
import { ArchiveService } from './domain/archive-service';
import { type CalibrationEvents, calibrationEvents } from './events';
import { openapi } from './openapi';
import { archiveRoutes, uploadHandler } from './routes/archives';
import { bestRunRoutes } from './routes/best-runs';
import type { ArchiveBlobs } from './storage/archive-blobs';
import { BestRunsStore } from './storage/best-runs-store';
import type { MetadataStore } from './storage/metadata-store';

export interface AppDeps {
  logger: Logger;
  store: MetadataStore;
  /** The database, for tables beyond archive metadata (best runs). */
  knex: Knex;
  blobs: ArchiveBlobs;
  outbox?: Outbox<CalibrationEvents>;
  apiToken?: string;
  adminToken?: string;
  maxUploadBytes: number;
  jsonDownloadMaxBytes: number;
  /** Extra readiness checks (the database answers). */
  readiness?: () => Promise<void>;
  /** Extra fields for /health (e.g. event publisher state). */
  health?: () => Record<string, unknown>;
}

/** Builds the calibration store's Express app. It never listens; main.ts does. */
export function createApp(deps: AppDeps): Express {
  const tokens = [deps.apiToken, deps.adminToken].filter((t): t is string => Boolean(t));
  const base = createServiceApp({
    service: 'calibration-store',
    logger: deps.logger,
    openapi,
    asyncapi: serviceAsyncApi(calibrationEvents),
    readiness: deps.readiness,
    health: deps.health,
    auth: bearerAuth(deps.apiToken ? tokens : []),
    // QIBO DB answered errors as {"status":"error","error":"…"}: scripts read r.json()["error"].
    // `status` stays the problem's HTTP status (RFC 9457), so only `error` is added.
    problemMembers: (doc) => ({ error: doc.detail }),
  });
  const { app } = base;

  const service = new ArchiveService({
    store: deps.store,
    blobs: deps.blobs,
    outbox: deps.outbox,
    logger: deps.logger,
  });
  const routeDeps = {
    ...deps,
    service,
    idempotency: new IdempotencyKeys(deps.knex, { resourceColumn: 'archive_id' }),
  };
  app.post('/upload', uploadHandler('calibration', routeDeps));
  app.use('/calibrations', archiveRoutes('calibration', routeDeps));
  app.use('/results', archiveRoutes('result', routeDeps));
  app.use('/bestruns', bestRunRoutes(new BestRunsStore(deps.knex), deps.outbox));
  app.get('/stats', async (_req, res) => {
    const s = await deps.store.stats();
    res.json({
      calibrations: s.calibrations,
      results: s.results,
      bytes: s.bytes,
      latest_calibration_at:
        s.latestCalibrationAt === null ? null : new Date(s.latestCalibrationAt).toISOString(),
      latest_result_at: s.latestResultAt === null ? null : new Date(s.latestResultAt).toISOString(),
    });
  });
  return base.finish();
}
