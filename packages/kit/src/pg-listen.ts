import pg from 'pg';
import type { Logger } from './logger';

export interface PgListenOptions {
  connectionString: string;
  channel: string;
  /** Each notification's payload, in the order PostgreSQL sent them. */
  onNotify(payload: string): void;
  /**
   * Called when notifications may have been missed: the connection failed (false), and again
   * once it listens anew (true). A cache kept fresh by the notifications is dropped on both.
   */
  onGap?(listening: boolean): void;
  logger: Logger;
  /** Shown in pg_stat_activity (default `qlab-listen-<channel>`). */
  applicationName?: string;
  /** How often the connection proves it is alive (a dead TCP peer sends no error). Default 400 ms. */
  heartbeatMs?: number;
}

export interface PgListener {
  /**
   * True while every notification sent since `ms` ago has surely been delivered: the connection
   * listens and answered a heartbeat within the last `ms`.
   */
  freshWithin(ms: number): boolean;
  close(): Promise<void>;
}

/**
 * One connection LISTENing on a channel (PostgreSQL: "NOTIFY provides a simple interprocess
 * communication mechanism ... notifications are delivered ... between transactions", and only
 * once the notifying transaction commits), reconnected with backoff when it fails. A heartbeat
 * on the same connection bounds how long a silently dead connection can pass for a live one.
 */
export function listenPg(options: PgListenOptions): PgListener {
  const heartbeatMs = options.heartbeatMs ?? 400;
  let client: pg.Client | undefined;
  let listening = false;
  let lastAlive = 0;
  let stopped = false;
  let retryMs = 100;
  let timer: NodeJS.Timeout | undefined;

  const lost = (c: pg.Client, err?: unknown) => {
    if (client !== c) return;
    client = undefined;
    if (listening) options.logger.warn({ err, channel: options.channel }, 'LISTEN connection lost');
    listening = false;
    options.onGap?.(false);
    c.end().catch(() => undefined);
    if (!stopped) timer = setTimeout(connect, retryMs);
    retryMs = Math.min(retryMs * 2, 5000);
  };

  const connect = async () => {
    if (stopped) return;
    const c = new pg.Client({
      connectionString: options.connectionString,
      keepAlive: true,
      application_name: options.applicationName ?? `qlab-listen-${options.channel}`.slice(0, 63),
    });
    client = c;
    c.on('error', (err) => lost(c, err));
    c.on('end', () => lost(c));
    c.on('notification', (m) => {
      if (m.channel === options.channel) options.onNotify(m.payload ?? '');
    });
    try {
      await c.connect();
      await c.query(`LISTEN ${c.escapeIdentifier(options.channel)}`);
      if (client !== c || stopped) return void c.end().catch(() => undefined);
      listening = true;
      lastAlive = Date.now();
      retryMs = 100;
      options.onGap?.(true);
      timer = setTimeout(heartbeat, heartbeatMs);
    } catch (err) {
      lost(c, err);
    }
  };

  const heartbeat = async () => {
    const c = client;
    if (!c || !listening || stopped) return;
    // A query that does not come back in time means the connection is gone, error or not.
    const deadline = setTimeout(() => lost(c, new Error('LISTEN heartbeat timed out')), heartbeatMs * 3);
    try {
      await c.query('select 1');
      if (client === c) lastAlive = Date.now();
    } catch (err) {
      lost(c, err);
    } finally {
      clearTimeout(deadline);
    }
    if (client === c && !stopped) timer = setTimeout(heartbeat, heartbeatMs);
  };

  void connect();
  return {
    freshWithin: (ms) => listening && Date.now() - lastAlive < ms,
    async close() {
      stopped = true;
      clearTimeout(timer);
      const c = client;
      client = undefined;
      listening = false;
      await c?.end().catch(() => undefined);
    },
  };
}
