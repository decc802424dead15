import { serviceAsyncApi } from '@qlab/events';
import { bearerAuth, createServiceApp, type Logger } from '@qlab/kit';
import type { Express } from 'express';
import { AnswerCache } from './answer-cache';
import { trackerEvents } from './events';
import { openapi } from './openapi';
import { serveRedoc } from './redoc';
import { trackerRoutes } from './routes/tracker-routes';
import type { TrackerQueries } from './storage/queries';
import type { ProviderSync, SyncKind, SyncReport } from './sync/sync-loop';

export interface AppDeps {
  logger: Logger;
  queries: TrackerQueries;
  syncs: ProviderSync[];
  /** Runs a sync asked for over HTTP: here, or on the replica that leads the provider. */
  runSync?: (sync: ProviderSync, kind: SyncKind) => Promise<SyncReport>;
  /** The providers this replica syncs (all of them without replicas). */
  leading?: () => string[];
  pricePerQuantumSecond: number;
  currency: string;
  apiToken?: string;
  readiness?: () => Promise<void>;
  /** See TrackerRouteDeps.dataVersion. */
  dataVersion: () => number;
  cache?: AnswerCache;
}

export function createApp(deps: AppDeps): Express {
  const startedAt = Date.now();
  const base = createServiceApp({
    service: 'quantum-tracker',
    logger: deps.logger,
    openapi,
    asyncapi: serviceAsyncApi(trackerEvents),
    readiness: deps.readiness,
    health: async () => {
      const providers = await deps.queries.providers();
      return {
        providers: providers.map((p) => ({
          name: p.name,
          healthy: p.healthy,
          last_success_at: p.last_success_at,
          last_error: p.last_error,
          synced_by_this_replica: deps.leading
            ? deps.leading().some((l) => l.endsWith(`/${p.name}`) || l === p.name)
            : true,
        })),
        ...(deps.syncs.length === 0 ? { notice: 'no quantum provider is configured' } : {}),
      };
    },
    auth: bearerAuth(deps.apiToken ? [deps.apiToken] : []),
  });
  serveRedoc(base.app, 'quantum-tracker API');
  base.app.use(
    trackerRoutes({
      ...deps,
      startedAt,
      cache: deps.cache ?? new AnswerCache(deps.dataVersion),
      runSync: deps.runSync ?? ((sync, kind) => sync.sync(kind)),
    }),
  );
  return base.finish();
}
