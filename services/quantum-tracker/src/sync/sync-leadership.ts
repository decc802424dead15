import { createHash, randomUUID } from 'node:crypto';
import {
  deploymentScope,
  isPostgres,
  type Knex,
  type Logger,
  listenPg,
  PgLeadership,
  type PgListener,
  pgConnectionString,
  serviceUnavailable,
} from '@qlab/kit';
import type { ProviderSync, SyncKind, SyncReport } from './sync-loop';

/** quantum-tracker's advisory-lock namespace ("QTR1"). */
const LOCK_NAMESPACE = 0x5154_5231;
/** A request is sent again this often until its report arrives (a hand-over may be under way)... */
const RESEND_MS = 2000;
/** ...and answered with 503 when no leader has accepted it for this long. */
const ACCEPT_TIMEOUT_MS = 15_000;
/** The leader's sync has its own deadline (15 min); this is a last guard. */
const REMOTE_SYNC_TIMEOUT_MS = 16 * 60_000;
/** How long a leader remembers a request's outcome, for its resends. */
const SERVED_KEPT_MS = 60_000;

/**
 * Who runs each provider's sync. On SQLite there is one process: it runs them all. On
 * PostgreSQL every replica campaigns for each provider's advisory lock (PgLeadership) and runs
 * the syncs it leads; a leader that dies or loses its link hands over within about a second
 * (process gone) or a few (link cut). A sync asked for on a replica that does not lead that
 * provider is sent to the leader as a NOTIFY on `qlab_tracker_sync_<hash of the scope>`, and the leader's
 * report comes back the same way: still one sync per provider at a time, across replicas.
 */
export class SyncLeadership {
  private leadership?: PgLeadership;
  private listener?: PgListener;
  private readonly waiting = new Map<
    string,
    { accepted(): void; done(report: SyncReport): void; failed(detail: string): void }
  >();
  /** On the leader: the outcome of each request it took, by request id. */
  private readonly served = new Map<string, Promise<object | null>>();
  private readonly channel: string;
  private readonly scope: string;

  constructor(
    private readonly knex: Knex,
    private readonly syncs: ProviderSync[],
    private readonly logger: Logger,
    private readonly options: { campaignMs?: number; heartbeatMs?: number } = {},
  ) {
    this.scope = deploymentScope(knex);
    // A hash of the deployment: channel names are identifiers of at most 63 bytes.
    this.channel = `qlab_tracker_sync_${createHash('sha256').update(this.scope).digest('hex').slice(0, 24)}`;
  }

  /** The advisory-lock name of a provider account in this deployment. */
  private lockName(account: string): string {
    return `${this.scope}/${account}`;
  }

  /** The provider accounts this replica syncs now. */
  leading(): string[] {
    if (!this.leadership) return this.syncs.map((s) => s.name);
    return this.leadership.leading().map((n) => n.slice(this.lockName('').length));
  }

  start(): void {
    if (!isPostgres(this.knex) || this.syncs.length === 0) {
      for (const s of this.syncs) s.start();
      return;
    }
    const connectionString = pgConnectionString(this.knex);
    const byLock = new Map(this.syncs.map((s) => [this.lockName(s.name), s]));
    this.leadership = new PgLeadership({
      connectionString,
      namespace: LOCK_NAMESPACE,
      names: [...byLock.keys()],
      onElected: (name) => byLock.get(name)?.start(),
      onDeposed: (name) => {
        byLock
          .get(name)
          ?.stop()
          .catch((err: unknown) => this.logger.warn({ err, name }, 'stopping a deposed sync failed'));
      },
      logger: this.logger,
      campaignMs: this.options.campaignMs,
      heartbeatMs: this.options.heartbeatMs,
      applicationName: 'qlab-tracker-leadership',
    });
    this.leadership.start();
    this.listener = listenPg({
      connectionString,
      channel: this.channel,
      applicationName: 'qlab-tracker-sync-requests',
      onNotify: (payload) => this.onMessage(payload),
      logger: this.logger,
    });
  }

  async stop(): Promise<void> {
    await this.listener?.close();
    await this.leadership?.stop();
    for (const s of this.syncs) await s.stop();
  }

  /**
   * Runs a sync of `sync`'s provider here if this replica leads it, else on the leader. The
   * request is sent again every RESEND_MS until its report comes back: a leader that dies after
   * accepting, or whose answer was lost, is replaced by the next one, which joins or runs the
   * sync. 503 when no leader has accepted for ACCEPT_TIMEOUT_MS.
   */
  async sync(sync: ProviderSync, kind: SyncKind): Promise<SyncReport> {
    if (!this.leadership || this.leading().includes(sync.name)) return sync.sync(kind);
    const id = randomUUID();
    const request = JSON.stringify({ type: 'request', id, provider: sync.name, kind });
    const send = () => this.knex.raw('select pg_notify(?, ?)', [this.channel, request]);
    let resend: NodeJS.Timeout | undefined;
    let silence: NodeJS.Timeout | undefined;
    let deadline: NodeJS.Timeout | undefined;
    try {
      return await new Promise<SyncReport>((resolve, reject) => {
        const unavailable = (why: string) => () => reject(serviceUnavailable(why));
        const noLeader = unavailable(`no replica leading ${sync.name} answered; try again`);
        silence = setTimeout(noLeader, ACCEPT_TIMEOUT_MS);
        deadline = setTimeout(
          unavailable(`the sync of ${sync.name} did not finish in time`),
          REMOTE_SYNC_TIMEOUT_MS,
        );
        resend = setInterval(() => send().catch(() => undefined), RESEND_MS);
        this.waiting.set(id, {
          accepted: () => {
            clearTimeout(silence);
            silence = setTimeout(noLeader, ACCEPT_TIMEOUT_MS);
          },
          done: resolve,
          failed: (detail) =>
            reject(serviceUnavailable(`the sync of ${sync.name} failed on its leader: ${detail}`)),
        });
        send().catch(reject);
      });
    } finally {
      clearInterval(resend);
      clearTimeout(silence);
      clearTimeout(deadline);
      this.waiting.delete(id);
    }
  }

  private onMessage(payload: string): void {
    let m: {
      type?: unknown;
      id?: unknown;
      provider?: unknown;
      kind?: unknown;
      report?: unknown;
      detail?: unknown;
    };
    try {
      m = JSON.parse(payload);
    } catch {
      return;
    }
    if (typeof m !== 'object' || m === null || typeof m.id !== 'string') return;
    const id = m.id;
    const waiter = this.waiting.get(id);
    if (m.type === 'accepted') return void waiter?.accepted();
    if (m.type === 'done') return void waiter?.done(m.report as SyncReport);
    if (m.type === 'failed') return void waiter?.failed(String(m.detail));
    if (m.type !== 'request' || !['all', 'jobs', 'backends'].includes(String(m.kind))) return;
    const sync = this.syncs.find((s) => s.name === m.provider);
    if (!sync || !this.leading().includes(sync.name)) return;
    const reply = (message: object) =>
      this.knex
        .raw('select pg_notify(?, ?)', [this.channel, JSON.stringify({ ...message, id })])
        .catch((err: unknown) => this.logger.warn({ err }, 'could not answer a sync request'));
    void reply({ type: 'accepted' });
    // A resent request is answered from the sync it started (or its outcome, if the answer was
    // lost), never a second sync; outcomes are kept a minute for resends still on their way.
    let served = this.served.get(id);
    if (!served) {
      served = sync.sync(m.kind as SyncKind).then(
        // Cancelled because this replica was deposed: no answer; the resend reaches the next leader.
        (report) => (report.cancelled ? null : { type: 'done', report }),
        (err: unknown) => {
          this.logger.warn({ err }, 'a requested sync failed');
          return { type: 'failed', detail: err instanceof Error ? err.message : String(err) };
        },
      );
      this.served.set(id, served);
      void served.then((answer) => {
        if (!answer) this.served.delete(id);
        else setTimeout(() => this.served.delete(id), SERVED_KEPT_MS).unref();
      });
    }
    void served.then((answer) => answer && reply(answer));
  }
}
