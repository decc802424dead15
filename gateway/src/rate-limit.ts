import type { Logger } from '@qlab/kit';
import { Redis } from 'ioredis';

/** Requests per key and minute; `take` answers how many ms to wait (0: allowed). */
export interface RateLimiter {
  take(id: string, now?: number): Promise<number>;
  /** Resolves once the counters can be reached, or after `timeoutMs` (it then keeps trying). */
  ready(timeoutMs: number): Promise<void>;
  close(): Promise<void>;
}

const WINDOW_MS = 60_000;

/**
 * One process's counters: a fixed window per key and clock minute. Enough for one gateway, and
 * what a replica falls back to while the shared counters cannot be reached.
 */
export class LocalRateLimiter implements RateLimiter {
  private readonly windows = new Map<string, { window: number; count: number }>();
  constructor(private readonly perMinute: number) {}

  async take(id: string, now = Date.now()): Promise<number> {
    if (this.perMinute <= 0) return 0;
    const window = Math.floor(now / WINDOW_MS);
    const w = this.windows.get(id);
    if (!w || w.window !== window) {
      this.windows.set(id, { window, count: 1 });
      if (this.windows.size > 10_000) this.windows.delete(this.windows.keys().next().value!);
      return 0;
    }
    if (w.count < this.perMinute) {
      w.count++;
      return 0;
    }
    return (window + 1) * WINDOW_MS - now;
  }

  async ready(): Promise<void> {}

  async close(): Promise<void> {}
}

/**
 * Counters every replica shares, in Redis (REDIS_URL), as Kong's rate limiting does with its
 * `redis` and `cluster` policies: one counter per key and clock minute, incremented atomically
 * by every gateway, expiring with its window. Kong's `fault_tolerant` (its default) proxies
 * when the store cannot be reached; here each replica then counts locally instead, so a
 * Redis outage loosens the limit to one per replica rather than lifting it.
 */
export class RedisRateLimiter implements RateLimiter {
  private readonly redis: Redis;
  private readonly fallback: LocalRateLimiter;
  private lastWarning = 0;

  constructor(
    url: string,
    private readonly perMinute: number,
    private readonly logger: Logger,
    private readonly prefix = 'qlab:ratelimit:',
  ) {
    this.fallback = new LocalRateLimiter(perMinute);
    this.redis = new Redis(url, {
      // Fail at once while disconnected instead of queueing requests behind the reconnection,
      // and give up on a command Redis does not answer quickly: the request then goes on.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: 250,
      lazyConnect: false,
      retryStrategy: (times) => Math.min(times * 100, 2000),
    });
    // A Redis in protected mode (no password, not bound to loopback only) answers other hosts
    // with DENIED and hangs up: the warning then names it (found by the hosts test).
    this.redis.on('error', (err) => this.warn(err));
    // INCR and the window's expiry in one step: a counter never outlives its window.
    this.redis.defineCommand('qlabTake', {
      numberOfKeys: 1,
      lua: "local n = redis.call('INCR', KEYS[1]) if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end return n",
    });
  }

  async take(id: string, now = Date.now()): Promise<number> {
    if (this.perMinute <= 0) return 0;
    const window = Math.floor(now / WINDOW_MS);
    if (this.redis.status !== 'ready') return this.fallback.take(id, now);
    try {
      const count = Number(
        await (this.redis as unknown as RedisWithTake).qlabTake(
          `${this.prefix}${id}:${window}`,
          WINDOW_MS * 2,
        ),
      );
      return count <= this.perMinute ? 0 : (window + 1) * WINDOW_MS - now;
    } catch (err) {
      this.warn(err);
      return this.fallback.take(id, now);
    }
  }

  async ready(timeoutMs: number): Promise<void> {
    if (this.redis.status === 'ready') return;
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.redis.off('ready', done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      this.redis.once('ready', done);
    });
  }

  private warn(err: unknown): void {
    if (Date.now() - this.lastWarning < 10_000) return;
    this.lastWarning = Date.now();
    this.logger.warn({ err }, 'rate limit counters in Redis unreachable: counting in this replica');
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }
}

type RedisWithTake = { qlabTake(key: string, ttlMs: number): Promise<unknown> };

export function createRateLimiter(
  perMinute: number,
  redisUrl: string | undefined,
  logger: Logger,
): RateLimiter {
  return redisUrl ? new RedisRateLimiter(redisUrl, perMinute, logger) : new LocalRateLimiter(perMinute);
}
