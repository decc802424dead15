import { serviceAsyncApi } from '@qlab/events';
import { bearerAuth, createServiceApp, type Logger } from '@qlab/kit';
import type { Express } from 'express';
import { buildOpenApi } from './openapi';
import { domainRoutes } from './routes/domain-routes';
import type { DomainQueries } from './storage/domain-queries';
import type { DomainWrites } from './storage/domain-writes';
import type { Exporter } from './storage/export';
import type { LakeExporter } from './storage/lake-export';

export interface AppDeps {
  logger: Logger;
  queries: DomainQueries;
  writes: DomainWrites;
  exporter: Exporter;
  lake: LakeExporter;
  apiToken?: string;
  maxBulkBytes: number;
  loadTimeoutMs: number;
  readiness?: () => Promise<void>;
  health?: () => Record<string, unknown>;
}

export function createApp(deps: AppDeps): Express {
  const base = createServiceApp({
    service: `analytics-${deps.queries.spec.name}`,
    logger: deps.logger,
    openapi: buildOpenApi(deps.queries.spec),
    asyncapi: serviceAsyncApi(deps.writes.events),
    readiness: deps.readiness,
    health: () => ({ domain: deps.queries.spec.name, ...deps.health?.() }),
    // Bulk bodies are NDJSON or CSV streams: routes parse what they take.
    parseBodies: false,
    // Seed 003's clients send the key as X-API-Key; it is checked against the token, not just present.
    auth: bearerAuth(deps.apiToken ? [deps.apiToken] : [], { apiKeyHeader: true }),
  });
  base.app.use(domainRoutes(deps));
  return base.finish();
}
