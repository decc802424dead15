import { coerceError, type Logger } from '@qlab/kit';
import type { LakeExporter } from './lake-export';

/**
 * Exports yesterday and today (UTC) to the lake every `everyMs` (ANALYTICS_LAKE_EVERY): the
 * days that can still change. Older days change only when records of theirs are ingested or
 * deleted; `POST …/export/lake` with `since` (or none: every day) rewrites them.
 */
export function scheduleLake(lake: LakeExporter, everyMs: number, logger: Logger) {
  let running: Promise<unknown> = Promise.resolve();
  const timer = setInterval(() => {
    const since = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
    running = lake.export(since).then(
      (r) => logger.info({ lake: r }, 'lake export'),
      (err: unknown) => logger.warn({ err: coerceError(err) }, 'lake export failed; tried again next time'),
    );
  }, everyMs);
  timer.unref();
  return {
    stop: () => clearInterval(timer),
    idle: () => running,
  };
}
