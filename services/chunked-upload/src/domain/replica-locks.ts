import { createHash, randomUUID } from 'node:crypto';
import { AppError, type Logger, listenPg, lockIdOf, type PgListener, sleep } from '@qlab/kit';
import pg from 'pg';
import { type Locks, UploadLocks } from './upload-locks';

/** chunked-upload's advisory-lock namespace ("QCU1"). */
const LOCK_NAMESPACE = 0x5143_5531;
/** How often a waiting request tries the lock, and asks the holder again to let go. */
const RETRY_MS = 50;
const PREEMPT_EVERY_MS = 1000;
/** A request waits this long for another replica's writer at most (a live PATCH may take long). */
const WAIT_MS = 10 * 60_000;
/** How long a write waits for a free lock connection before 503. */
const POOL_WAIT_MS = 5000;

/**
 * One writer per upload across replicas on one PostgreSQL: the local lock first (UploadLocks),
 * then the upload's session advisory lock (`pg_try_advisory_lock`: "held until explicitly
 * released or the session ends", so a replica that dies mid-PATCH lets go at once) on a
 * connection of its own for as long as the write lasts. A request that takes over (a tus PATCH)
 * asks the holder to stop with a NOTIFY on `qlab_upload_preempt_<hash>`; the holder cuts its
 * request, as UploadLocks does in one process, commits what it has and lets go.
 */
export class ReplicaUploadLocks implements Locks {
  private readonly local = new UploadLocks();
  private readonly pool: pg.Pool;
  private readonly listener: PgListener;
  private readonly channel: string;
  /** This replica, in its NOTIFYs: it hears its own, and must not cut its own request. */
  private readonly origin = randomUUID();

  constructor(
    connectionString: string,
    /** The deployment (database and schema): its uploads' locks and messages are its own. */
    private readonly scope: string,
    private readonly logger: Logger,
    options: { maxWriters?: number } = {},
  ) {
    this.channel = `qlab_upload_preempt_${createHash('sha256').update(scope).digest('hex').slice(0, 24)}`;
    // One connection per upload being written (a waiter holds none): the pool's size is how
    // many this replica writes at once. Beyond it a write is refused in seconds (503), never
    // queued for ever, and replicas × this stays within PostgreSQL's max_connections.
    this.pool = new pg.Pool({
      connectionString,
      max: options.maxWriters ?? 16,
      connectionTimeoutMillis: POOL_WAIT_MS,
      application_name: 'qlab-upload-locks',
      keepAlive: true,
    });
    this.pool.on('error', (err) => logger.warn({ err }, 'upload lock connection failed'));
    this.listener = listenPg({
      connectionString,
      channel: this.channel,
      applicationName: 'qlab-upload-preempt',
      onNotify: (payload) => {
        const [from, id] = payload.split(' ');
        if (from !== this.origin && id) this.local.preempt(id);
      },
      logger,
    });
  }

  isHeld(id: string): boolean {
    return this.local.isHeld(id);
  }

  async acquire(id: string, preempt: () => void, options: { takeOver: boolean }): Promise<() => void> {
    const releaseLocal = await this.local.acquire(id, preempt, options);
    try {
      const until = Date.now() + WAIT_MS;
      let asked = 0;
      for (;;) {
        const held = await this.tryLock(id, preempt);
        if (held) return this.releaser(held, releaseLocal);
        if (Date.now() > until)
          throw new AppError(423, 'UPLOAD_LOCKED', `upload ${id} is being written by another replica`);
        if (options.takeOver && Date.now() - asked >= PREEMPT_EVERY_MS) {
          asked = Date.now();
          await this.pool.query('select pg_notify($1, $2)', [this.channel, `${this.origin} ${id}`]);
        }
        await sleep(RETRY_MS);
      }
    } catch (err) {
      releaseLocal();
      throw err;
    }
  }

  /** The lock if it is free now (sweeps skip an upload another replica is writing). */
  async tryAcquire(id: string): Promise<(() => void) | undefined> {
    if (this.local.isHeld(id)) return undefined;
    const releaseLocal = await this.local.acquire(id, () => undefined, { takeOver: false });
    try {
      const held = await this.tryLock(id, () => undefined);
      if (held) return this.releaser(held, releaseLocal);
    } catch (err) {
      releaseLocal();
      throw err;
    }
    releaseLocal();
    return undefined;
  }

  /** One try at the advisory lock, on a connection kept only if it got it. */
  private async tryLock(
    id: string,
    preempt: () => void,
  ): Promise<{ client: pg.PoolClient; key: number } | undefined> {
    const key = lockIdOf(`${this.scope}/${id}`);
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw new AppError(
        503,
        'UPLOADS_BUSY',
        `too many uploads are being written here; try again (${(err as Error).message})`,
      );
    }
    let ok = false;
    try {
      const r = await client.query<{ ok: boolean }>('select pg_try_advisory_lock($1, $2) as ok', [
        LOCK_NAMESPACE,
        key,
      ]);
      ok = r.rows[0]?.ok === true;
    } finally {
      if (!ok) client.release();
    }
    if (!ok) return undefined;
    // The lock lives as long as this connection: if it breaks (a restart, a failover), the
    // writer here must stop, since another replica may now take the upload.
    client.on('error', (err) => {
      this.logger.warn({ err, id }, 'upload lock connection lost; stopping its writer');
      preempt();
    });
    return { client, key };
  }

  private releaser(held: { client: pg.PoolClient; key: number }, releaseLocal: () => void): () => void {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      held.client
        .query('select pg_advisory_unlock($1, $2)', [LOCK_NAMESPACE, held.key])
        .then(
          () => held.client.release(),
          // A connection that cannot unlock is closed: its session's locks go with it.
          (err: unknown) => held.client.release(err as Error),
        )
        .finally(releaseLocal);
    };
  }

  async close(): Promise<void> {
    await this.listener.close();
    await this.pool.end();
  }
}
