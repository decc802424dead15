import { coerceError, isPostgres, type Knex, type Logger, silentLogger, withTimeout } from '@qlab/kit';
import mqtt, { type MqttClient } from 'mqtt';
import { OUTBOX_TABLE } from './outbox';

/** One stored, not yet published event. */
export interface OutboxRow {
  seq: number | string;
  topic: string;
  payload: string;
}

/**
 * Where a publisher finds events. `drain` hands the oldest rows (at most `limit`) to `send` and
 * deletes them only if `send` resolved; it returns how many were sent. Services on knex use
 * `knexOutboxSource`; a service on another store (analytics on DuckDB) brings its own.
 */
export interface OutboxSource {
  drain(limit: number, send: (rows: OutboxRow[]) => Promise<void>): Promise<number>;
}

export interface PublisherOptions {
  /** The outbox: a knex database holding `event_outbox`, or any other source. */
  knex?: Knex;
  source?: OutboxSource;
  /** mqtt://host:port of the broker. */
  mqttUrl: string;
  clientId: string;
  logger?: Logger;
  /** How often to look for events when nobody kicked. Default 500 ms. */
  pollMs?: number;
  /** Events sent per round trip. Default 200. */
  batchSize?: number;
  /** A batch not acknowledged in this time is retried. Default 10 s. */
  publishTimeoutMs?: number;
  /** Backoff after a failed batch: starts here, doubles, caps at maxBackoffMs. Defaults 200 ms / 10 s. */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /**
   * Events sent this recently are sent again (same ids) after the connection to the broker comes
   * back: a broker that died after its PUBACK may not have delivered or saved them, and
   * subscribers drop repeats by id. Default 60 s; 0 turns it off.
   */
  replayWindowMs?: number;
  /** How long after reconnecting the replay waits, so subscribers are back too. Default 2 s. */
  replayDelayMs?: number;
}

/** At most this many sent events are kept for a replay. */
const REPLAY_MAX_EVENTS = 20_000;

// Any constant works: it only keeps two publishers on one PostgreSQL database from draining at once.
const PG_DRAIN_LOCK = 4_201_337;

/**
 * Drains the outbox to MQTT with QoS 1, in write order. A row is deleted only after the broker
 * acknowledged it, so a broker outage or a crash delays events and loses none; a crash between
 * PUBACK and delete can send one twice, which subscribers absorb by deduplicating on `id`.
 * After a reconnect the last minute's events are sent once more (replayWindowMs), for a broker
 * that died between its PUBACK and delivering them.
 */
export class OutboxPublisher {
  private client: MqttClient | undefined;
  private running = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private kicked = false;
  private backoffMs: number;
  readonly stats = { published: 0, replayed: 0, failures: 0, lastError: undefined as string | undefined };
  /** What was sent lately, oldest first, for a replay after a reconnect. */
  private recent: { topic: string; payload: string; at: number }[] = [];
  private connectedBefore = false;
  private readonly logger: Logger;
  private readonly source: OutboxSource;
  private readonly o: Required<Omit<PublisherOptions, 'logger' | 'knex' | 'source' | 'mqttUrl' | 'clientId'>>;

  constructor(private readonly options: PublisherOptions) {
    if (!options.mqttUrl) throw new Error('OutboxPublisher: mqttUrl is required');
    const source = options.source ?? (options.knex ? knexOutboxSource(options.knex) : undefined);
    if (!source) throw new Error('OutboxPublisher: knex or source is required');
    this.source = source;
    this.logger = options.logger ?? silentLogger();
    this.o = {
      pollMs: options.pollMs ?? 500,
      batchSize: options.batchSize ?? 200,
      publishTimeoutMs: options.publishTimeoutMs ?? 10_000,
      initialBackoffMs: options.initialBackoffMs ?? 200,
      maxBackoffMs: options.maxBackoffMs ?? 10_000,
      replayWindowMs: options.replayWindowMs ?? 60_000,
      replayDelayMs: options.replayDelayMs ?? 2000,
    };
    this.backoffMs = this.o.initialBackoffMs;
  }

  get connected(): boolean {
    return this.client?.connected ?? false;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.client = mqtt.connect(this.options.mqttUrl, {
      clientId: this.options.clientId,
      clean: true,
      reconnectPeriod: 1000,
      connectTimeout: 5000,
      // mqtt.js must not buffer on its own while offline: the outbox is our buffer.
      queueQoSZero: false,
    });
    this.client.on('connect', () => {
      this.logger.info({ broker: this.options.mqttUrl }, 'event publisher connected');
      if (this.connectedBefore) setTimeout(() => void this.replay(), this.o.replayDelayMs).unref();
      this.connectedBefore = true;
      this.kick();
    });
    this.client.on('error', (err) => {
      this.stats.lastError = err.message;
      this.logger.debug({ err }, 'mqtt error');
    });
    this.loop = this.run();
  }

  /** Look for new events now instead of at the next poll. */
  kick(): void {
    this.kicked = true;
    this.wake?.();
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.kick();
    await this.loop;
    await this.client?.endAsync();
  }

  private sleep(ms: number): Promise<void> {
    if (this.kicked) {
      this.kicked = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = () => {
        this.wake = undefined;
        this.kicked = false;
        done();
      };
    });
  }

  private async run(): Promise<void> {
    while (this.running) {
      if (!this.client?.connected) {
        await this.sleep(this.o.pollMs);
        continue;
      }
      let sent = 0;
      try {
        sent = await this.drainOnce();
        this.backoffMs = this.o.initialBackoffMs;
      } catch (err) {
        const e = coerceError(err);
        this.stats.failures++;
        this.stats.lastError = e.message;
        this.logger.warn({ err: e, retryInMs: this.backoffMs }, 'publishing events failed; will retry');
        await this.sleep(this.backoffMs);
        this.backoffMs = Math.min(this.backoffMs * 2, this.o.maxBackoffMs);
        continue;
      }
      // A full batch means more may be waiting: go again at once.
      if (sent < this.o.batchSize) await this.sleep(this.o.pollMs);
    }
  }

  /**
   * After a reconnect: the events sent in the replay window go out again, once. A broker that
   * was killed may have acknowledged them and lost them before delivering; a subscriber that
   * had them drops the repeats by id. Failures are only logged: the outbox rows are gone, and
   * the next reconnect tries again.
   */
  private async replay(): Promise<void> {
    const client = this.client;
    const since = Date.now() - this.o.replayWindowMs;
    const events = this.recent.filter((e) => e.at >= since);
    if (!client?.connected || events.length === 0 || this.o.replayWindowMs === 0) return;
    try {
      await withTimeout(
        Promise.all(events.map((e) => client.publishAsync(e.topic, e.payload, { qos: 1 }))),
        this.o.publishTimeoutMs,
        'broker did not acknowledge the replay in time',
      );
      this.stats.replayed += events.length;
      this.logger.info({ events: events.length }, 'events of the last minute sent again after a reconnect');
    } catch (err) {
      this.logger.warn({ err: coerceError(err) }, 'replaying recent events failed');
    }
  }

  /** Keeps what was just sent for a replay: the replay window's worth, at most REPLAY_MAX_EVENTS. */
  private remember(rows: OutboxRow[]): void {
    const at = Date.now();
    for (const r of rows) this.recent.push({ topic: r.topic, payload: r.payload, at });
    const since = at - this.o.replayWindowMs;
    let drop = Math.max(0, this.recent.length - REPLAY_MAX_EVENTS);
    while (drop < this.recent.length && this.recent[drop]!.at < since) drop++;
    if (drop > 0) this.recent = this.recent.slice(drop);
  }

  /** Sends one batch; returns how many events were sent and removed. */
  drainOnce(): Promise<number> {
    return this.source.drain(this.o.batchSize, async (rows) => {
      const client = this.client;
      if (!client?.connected) throw new Error('broker not connected');
      // mqtt.js writes publishes in call order on one connection, so the broker sees write order.
      await withTimeout(
        Promise.all(rows.map((r) => client.publishAsync(r.topic, r.payload, { qos: 1 }))),
        this.o.publishTimeoutMs,
        'broker did not acknowledge in time',
      );
      this.stats.published += rows.length;
      if (this.o.replayWindowMs > 0) this.remember(rows);
    });
  }
}

/** The outbox table of a knex database; on PostgreSQL one publisher drains at a time. */
export function knexOutboxSource(knex: Knex): OutboxSource {
  const sendBatch = async (
    db: Knex | Knex.Transaction,
    limit: number,
    send: (rows: OutboxRow[]) => Promise<void>,
  ): Promise<number> => {
    const rows: OutboxRow[] = await db(OUTBOX_TABLE)
      .select('seq', 'topic', 'payload')
      .orderBy('seq')
      .limit(limit);
    if (rows.length === 0) return 0;
    await send(rows);
    await db(OUTBOX_TABLE)
      .whereIn(
        'seq',
        rows.map((r) => r.seq),
      )
      .delete();
    return rows.length;
  };
  return {
    drain(limit, send) {
      if (!isPostgres(knex)) return sendBatch(knex, limit, send);
      return knex.transaction(async (trx) => {
        const lock = await trx.raw('select pg_try_advisory_xact_lock(?) as ok', [PG_DRAIN_LOCK]);
        if (!lock.rows[0].ok) return 0;
        return sendBatch(trx, limit, send);
      });
    },
  };
}
