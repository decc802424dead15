import type { Logger } from '@qlab/kit';
import { createApp } from './app';
import { type DomainOptions, openDomain } from './open-domain';
import { scheduleLake } from './storage/lake-schedule';

/** What one domain's service is built from (main.ts passes its config; tests give their own). */
export interface DomainSettings extends DomainOptions {
  apiToken?: string;
  maxBulkBytes: number;
  loadTimeoutMs: number;
  /** ms between scheduled lake exports of the last two days; 0 or absent = only on request. */
  lakeEveryMs?: number;
}

export interface DomainDeps {
  logger: Logger;
  /** Called after a write commits an event (the publisher's kick). */
  onEvent?: () => void;
  /** Extra fields for /health (main adds the file, auth and event state). */
  health?: () => Record<string, unknown>;
}

export type ComposedDomain = Awaited<ReturnType<typeof compose>>;

/**
 * The one composition root of an analytics domain: its DuckDB file (opened, migrated, summaries
 * rebuilt), the reads, writes and exports over it, and the HTTP app. main.ts, the tests and the
 * gateway's tests build a domain here. `close` closes the file.
 */
export async function compose(settings: DomainSettings, deps: DomainDeps) {
  const domain = await openDomain(settings, deps.onEvent);
  const app = createApp({
    logger: deps.logger,
    ...domain,
    apiToken: settings.apiToken,
    maxBulkBytes: settings.maxBulkBytes,
    loadTimeoutMs: settings.loadTimeoutMs,
    readiness: async () => {
      await domain.db.query('SELECT 1');
    },
    health: deps.health,
  });
  const schedule = settings.lakeEveryMs
    ? scheduleLake(domain.lake, settings.lakeEveryMs, deps.logger)
    : undefined;
  return {
    app,
    domain,
    close: async () => {
      schedule?.stop();
      await schedule?.idle();
      await domain.db.close();
    },
  };
}
