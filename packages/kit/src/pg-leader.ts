import pg from 'pg';
import type { Logger } from './logger';

export interface PgLeadershipOptions {
  connectionString: string;
  /** Advisory-lock namespace (the first int4 of pg_try_advisory_lock(int, int)): one per service. */
  namespace: number;
  /** What to lead, by name (a provider account, say); each is one advisory lock. */
  names: string[];
  onElected(name: string): void;
  /** The lock is lost (connection failed or closing): stop at once; another replica may take over. */
  onDeposed(name: string): void;
  logger: Logger;
  /** How often a replica that leads nothing tries again (default 1 s). */
  campaignMs?: number;
  /** How often the lock's connection proves it is alive (default 400 ms; 3 missed = lost). */
  heartbeatMs?: number;
  applicationName?: string;
}

/** A name's int4 lock id: FNV-1a over its UTF-8 bytes (a collision only makes two names share a leader). */
export function lockIdOf(name: string): number {
  let h = 0x811c9dc5;
  for (const b of Buffer.from(name)) h = Math.imul(h ^ b, 0x01000193);
  return h | 0;
}

/**
 * Leadership among replicas by PostgreSQL session advisory locks (pg_try_advisory_lock: "a
 * session-level advisory lock ... is held until explicitly released or the session ends"), one
 * lock per name, all on one connection of this replica. When the leader's process dies its
 * connection closes and PostgreSQL releases the locks at once; the others try every
 * `campaignMs`, so hand-over takes about that long. When the leader's link to PostgreSQL is
 * cut, its heartbeat fails within 3 × `heartbeatMs` and it steps down, while the server, told
 * by TCP keepalives (idle 2 s, then 3 × 1 s), releases the locks within about 5 s.
 */
export class PgLeadership {
  private client: pg.Client | undefined;
  private readonly held = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private busy = false;

  constructor(private readonly options: PgLeadershipOptions) {}

  /** The names this replica leads now. */
  leading(): string[] {
    return [...this.held];
  }

  start(): void {
    this.stopped = false;
    void this.tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    const c = this.client;
    this.depose();
    // Ending the session releases the locks (no unlock needed, and none would run on a dead link).
    await c?.end().catch(() => undefined);
  }

  private depose(err?: unknown): void {
    const c = this.client;
    this.client = undefined;
    if (this.held.size > 0) this.options.logger.warn({ err, leading: [...this.held] }, 'leadership lost');
    for (const name of this.held) this.options.onDeposed(name);
    this.held.clear();
    c?.end().catch(() => undefined);
  }

  private schedule(): void {
    if (this.stopped) return;
    const every =
      this.held.size === this.options.names.length
        ? (this.options.heartbeatMs ?? 400)
        : Math.min(this.options.campaignMs ?? 1000, this.options.heartbeatMs ?? 400);
    this.timer = setTimeout(() => void this.tick(), every);
  }

  /** Connects when needed, proves the connection alive, and tries the locks not held. */
  private async tick(): Promise<void> {
    if (this.stopped || this.busy) return;
    this.busy = true;
    const heartbeatMs = this.options.heartbeatMs ?? 400;
    let deadline: NodeJS.Timeout | undefined;
    try {
      if (!this.client) await this.connect();
      const c = this.client!;
      deadline = setTimeout(() => this.depose(new Error('leadership heartbeat timed out')), heartbeatMs * 3);
      await c.query('select 1');
      if (this.campaignDue()) await this.campaign(c);
    } catch (err) {
      this.depose(err);
    } finally {
      clearTimeout(deadline);
      this.busy = false;
      this.schedule();
    }
  }

  private lastCampaign = 0;
  private campaignDue(): boolean {
    if (this.held.size === this.options.names.length) return false;
    return Date.now() - this.lastCampaign >= (this.options.campaignMs ?? 1000) - 5;
  }

  private async campaign(c: pg.Client): Promise<void> {
    this.lastCampaign = Date.now();
    for (const name of this.options.names) {
      if (this.held.has(name) || this.client !== c) continue;
      const r = await c.query<{ ok: boolean }>('select pg_try_advisory_lock($1, $2) as ok', [
        this.options.namespace,
        lockIdOf(name),
      ]);
      if (r.rows[0]?.ok && this.client === c && !this.stopped) {
        this.held.add(name);
        this.options.logger.info({ name }, 'leading');
        this.options.onElected(name);
      }
    }
  }

  private async connect(): Promise<void> {
    const c = new pg.Client({
      connectionString: this.options.connectionString,
      application_name: this.options.applicationName ?? 'qlab-leadership',
      keepAlive: true,
      // The server's side of the keepalive: a leader that vanished from the network loses its
      // locks within seconds, not after the kernel's two hours.
      options: '-c tcp_keepalives_idle=2 -c tcp_keepalives_interval=1 -c tcp_keepalives_count=3',
    });
    c.on('error', (err) => {
      if (this.client === c) this.depose(err);
    });
    c.on('end', () => {
      if (this.client === c) this.depose(new Error('leadership connection ended'));
    });
    this.client = c;
    await c.connect();
  }
}
