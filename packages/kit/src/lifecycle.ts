import { coerceError } from './errors';
import type { Logger } from './logger';

type Release = () => unknown | Promise<unknown>;

/**
 * Every resource a process opens registers how to release it. stop() releases in reverse
 * order (last opened, first closed), runs once however often it is called, and logs
 * failures after the first instead of hiding them.
 */
export class Lifecycle {
  private readonly releasers: { name: string; release: Release }[] = [];
  private stopping: Promise<void> | undefined;

  constructor(private readonly logger?: Logger) {}

  add(name: string, release: Release): void {
    if (this.stopping) throw new Error(`cannot register ${name}: already stopping`);
    this.releasers.push({ name, release });
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      let first: Error | undefined;
      for (const { name, release } of [...this.releasers].reverse()) {
        try {
          await release();
        } catch (err) {
          const e = coerceError(err);
          this.logger?.error({ err: e }, `releasing ${name} failed`);
          first ??= e;
        }
      }
      if (first) throw first;
    })();
    return this.stopping;
  }
}

/**
 * Stops the lifecycle on SIGTERM or SIGINT, then exits. A second signal, or a stop that
 * takes longer than timeoutMs, exits at once.
 */
export function stopOnSignals(lifecycle: Lifecycle, logger: Logger, timeoutMs = 15_000): void {
  let received = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (received) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    received = true;
    logger.info({ signal }, 'shutting down');
    const timer = setTimeout(() => {
      logger.error('shutdown timed out: exiting');
      process.exit(1);
    }, timeoutMs);
    timer.unref();
    lifecycle.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}
