import type { Knex } from '@qlab/kit';

const DAY = 86_400_000;
const iso = (v: unknown) => (v === null || v === undefined ? null : new Date(Number(v)).toISOString());
const n = (v: unknown) => (v === null || v === undefined ? null : Number(v));
const round = (v: number | null, d = 3) => (v === null ? null : Math.round(v * 10 ** d) / 10 ** d);

export interface JobFilters {
  provider?: string;
  backend?: string;
  status?: string;
  program?: string;
  user_id?: string;
  since?: number;
  until?: number;
}

// biome-ignore lint/suspicious/noExplicitAny: aggregate rows differ per query and per engine.
type Row = Record<string, any>;

export function presentJob(r: Row) {
  const created = n(r.created_at)!;
  const started = n(r.started_at);
  const ended = n(r.ended_at);
  return {
    provider: r.provider,
    id: r.id,
    backend: r.backend,
    status: r.status,
    raw_status: r.raw_status,
    program: r.program,
    user_id: r.user_id,
    created_at: iso(created),
    started_at: iso(started),
    ended_at: iso(ended),
    queue_seconds: started === null ? null : (started - created) / 1000,
    run_seconds: started === null || ended === null ? null : (ended - started) / 1000,
    quantum_seconds: n(r.quantum_seconds),
    /** `final` once the provider has billed the job; `pending` until then (IBM usage.status). */
    billing: r.billing_final === undefined ? undefined : r.billing_final ? 'final' : 'pending',
    account: r.account ?? null,
    shots: n(r.shots),
    tags: JSON.parse(String(r.tags ?? '[]')) as string[],
    failure_reason: r.failure_reason ?? null,
    session_id: r.session_id ?? null,
    updated_at: iso(r.updated_at),
  };
}

export function presentBackend(r: Row) {
  return {
    provider: r.provider,
    name: r.name,
    status: r.status,
    operational: r.status === 'online',
    raw_status: r.raw_status,
    status_reason: r.status_reason ?? null,
    is_simulator: Boolean(r.is_simulator),
    qubits: n(r.qubits),
    queue_length: n(r.queue_length),
    wait_seconds_avg: n(r.wait_seconds_avg),
    wait_seconds_p95: n(r.wait_seconds_p95),
    processor: r.processor ?? null,
    degraded: Boolean(r.degraded),
    region: r.region ?? null,
    details: JSON.parse(String(r.details ?? '{}')),
    first_seen_at: iso(r.first_seen_at),
    updated_at: iso(r.updated_at),
    status_changed_at: iso(r.status_changed_at),
  };
}

/** Read side: every figure comes from recorded rows, aggregated in SQL. */
export class TrackerQueries {
  constructor(
    private readonly knex: Knex,
    private readonly now: () => number = Date.now,
  ) {}

  private jobsWhere(q: Knex.QueryBuilder, f: JobFilters): Knex.QueryBuilder {
    if (f.provider) q.where('provider', f.provider);
    if (f.backend) q.where('backend', f.backend);
    if (f.status) q.where('status', f.status);
    if (f.program) q.where('program', f.program);
    if (f.user_id) q.where('user_id', f.user_id);
    if (f.since !== undefined) q.where('created_at', '>=', f.since);
    if (f.until !== undefined) q.where('created_at', '<', f.until);
    return q;
  }

  async jobs(f: JobFilters, limit: number, offset: number) {
    const [{ total }] = (await this.jobsWhere(this.knex('jobs'), f).count({ total: '*' })) as [
      { total: number | string },
    ];
    const rows = (await this.jobsWhere(this.knex('jobs'), f)
      .orderBy([{ column: 'created_at', order: 'desc' }, { column: 'id' }])
      .limit(limit)
      .offset(offset)) as Row[];
    return { jobs: rows.map(presentJob), total: Number(total), limit, offset };
  }

  async job(id: string) {
    const rows = (await this.knex('jobs').where('id', id)) as Row[];
    if (rows.length === 0) return undefined;
    const r = rows[0]!;
    const history = (await this.knex('job_transitions')
      .select('from_status', 'to_status', 'at')
      .where({ provider: r.provider, job_id: id })
      .orderBy('seq')) as Row[];
    return {
      ...presentJob(r),
      history: history.map((h) => ({ from: h.from_status, to: h.to_status, at: iso(h.at) })),
    };
  }

  async jobStats(f: JobFilters = {}) {
    const byStatus = (await this.jobsWhere(this.knex('jobs'), f)
      .select('status')
      .count({ n: '*' })
      .groupBy('status')) as Row[];
    const byProvider = (await this.jobsWhere(this.knex('jobs'), f)
      .select('provider')
      .count({ n: '*' })
      .groupBy('provider')) as Row[];
    const [agg] = (await this.jobsWhere(this.knex('jobs'), f).select(
      this.knex.raw('count(*) as total'),
      this.knex.raw(
        'avg(case when started_at is not null then (started_at - created_at) / 1000.0 end) as avg_queue_seconds',
      ),
      this.knex.raw(
        'avg(case when ended_at is not null and started_at is not null then (ended_at - started_at) / 1000.0 end) as avg_run_seconds',
      ),
      this.knex.raw('sum(coalesce(quantum_seconds, 0)) as quantum_seconds'),
      this.knex.raw('sum(case when created_at >= ? then 1 else 0 end) as last_24h', [this.now() - DAY]),
    )) as Row[];
    const counts = Object.fromEntries(byStatus.map((r) => [String(r.status), Number(r.n)]));
    const finished = (counts.completed ?? 0) + (counts.failed ?? 0) + (counts.cancelled ?? 0);
    return {
      total_jobs: Number(agg?.total ?? 0),
      by_status: counts,
      by_provider: Object.fromEntries(byProvider.map((r) => [String(r.provider), Number(r.n)])),
      active_jobs: (counts.queued ?? 0) + (counts.running ?? 0) + (counts.validating ?? 0),
      success_rate: finished === 0 ? null : round((counts.completed ?? 0) / finished, 4),
      avg_queue_seconds: round(n(agg?.avg_queue_seconds)),
      avg_run_seconds: round(n(agg?.avg_run_seconds)),
      quantum_seconds: round(n(agg?.quantum_seconds)) ?? 0,
      jobs_last_24h: Number(agg?.last_24h ?? 0),
    };
  }

  /** Jobs per day (by creation) and status over the last `days`. */
  async dailyTrends(days: number, f: JobFilters = {}) {
    const since = this.dayStart(this.now()) - (days - 1) * DAY;
    const rows = (await this.jobsWhere(this.knex('jobs'), { ...f, since })
      .select(this.knex.raw('floor(created_at / ?) as day', [DAY]), 'status')
      .count({ n: '*' })
      .sum({ qs: 'quantum_seconds' })
      .groupByRaw('1, status')) as Row[];
    const byDay = new Map<
      number,
      { date: string; total: number; quantum_seconds: number; by_status: Record<string, number> }
    >();
    for (let d = 0; d < days; d++) {
      const t = since + d * DAY;
      byDay.set(t / DAY, {
        date: new Date(t).toISOString().slice(0, 10),
        total: 0,
        quantum_seconds: 0,
        by_status: {},
      });
    }
    for (const r of rows) {
      const e = byDay.get(Number(r.day));
      if (!e) continue;
      e.total += Number(r.n);
      e.quantum_seconds += Number(r.qs ?? 0);
      e.by_status[String(r.status)] = Number(r.n);
    }
    return [...byDay.values()];
  }

  private dayStart(t: number): number {
    return Math.floor(t / DAY) * DAY;
  }

  async backends(where: { provider?: string; status?: string; is_simulator?: boolean } = {}) {
    const q = this.knex('backends').orderBy([{ column: 'provider' }, { column: 'name' }]);
    if (where.provider) q.where('provider', where.provider);
    if (where.status) q.where('status', where.status);
    if (where.is_simulator !== undefined) q.where('is_simulator', where.is_simulator);
    return (await q).map(presentBackend);
  }

  async backend(name: string, historyHours: number) {
    const row = (await this.knex('backends').where('name', name).orderBy('provider').first()) as
      | Row
      | undefined;
    if (!row) return undefined;
    const history = (await this.knex('backend_snapshots')
      .select('at', 'status', 'queue_length', 'wait_seconds_avg')
      .where({ provider: row.provider, name })
      .where('at', '>=', this.now() - historyHours * 3_600_000)
      .orderBy('at')) as Row[];
    return {
      ...presentBackend(row),
      history: history.map((h) => ({
        at: iso(h.at),
        status: h.status,
        queue_length: n(h.queue_length),
        wait_seconds_avg: n(h.wait_seconds_avg),
      })),
    };
  }

  async backendStats() {
    const rows = (await this.knex('backends').select(
      'status',
      'is_simulator',
      'qubits',
      'queue_length',
    )) as Row[];
    const total = rows.length;
    const by_status: Record<string, number> = {};
    let simulators = 0;
    let qubits = 0;
    let queue = 0;
    let queueCount = 0;
    for (const r of rows) {
      by_status[r.status] = (by_status[r.status] ?? 0) + 1;
      if (r.is_simulator) simulators++;
      qubits += Number(r.qubits ?? 0);
      if (r.queue_length !== null) {
        queue += Number(r.queue_length);
        queueCount++;
      }
    }
    return {
      total_backends: total,
      by_status,
      operational: by_status.online ?? 0,
      simulators,
      real_devices: total - simulators,
      total_qubits: qubits,
      total_queued_jobs: queue,
      avg_queue_length: queueCount === 0 ? null : round(queue / queueCount, 2),
    };
  }

  /** Per backend over `days`: jobs, quantum seconds, busy fraction, uptime and queue length from snapshots. */
  async utilization(days: number) {
    const since = this.now() - days * DAY;
    const jobs = (await this.knex('jobs')
      .select('provider', 'backend')
      .count({ jobs: '*' })
      .sum({ qs: 'quantum_seconds' })
      .select(this.knex.raw("sum(case when status = 'completed' then 1 else 0 end) as completed"))
      .where('created_at', '>=', since)
      .whereNotNull('backend')
      .groupBy('provider', 'backend')) as Row[];
    const snaps = (await this.knex('backend_snapshots')
      .select('provider', 'name')
      .count({ samples: '*' })
      .select(this.knex.raw("sum(case when status = 'online' then 1 else 0 end) as online"))
      .avg({ avg_queue: 'queue_length' })
      .max({ max_queue: 'queue_length' })
      .where('at', '>=', since)
      .groupBy('provider', 'name')) as Row[];
    const backends = (await this.knex('backends').select('provider', 'name', 'is_simulator')) as Row[];
    const key = (p: unknown, b: unknown) => `${p}/${b}`;
    const jm = new Map(jobs.map((j) => [key(j.provider, j.backend), j]));
    const sm = new Map(snaps.map((s) => [key(s.provider, s.name), s]));
    const window = days * 86_400;
    return backends.map((b) => {
      const j = jm.get(key(b.provider, b.name));
      const s = sm.get(key(b.provider, b.name));
      const qs = Number(j?.qs ?? 0);
      return {
        provider: b.provider,
        backend: b.name,
        is_simulator: Boolean(b.is_simulator),
        jobs: Number(j?.jobs ?? 0),
        completed_jobs: Number(j?.completed ?? 0),
        quantum_seconds: round(qs),
        utilization: round(qs / window, 6),
        uptime: s && Number(s.samples) > 0 ? round(Number(s.online) / Number(s.samples), 4) : null,
        avg_queue_length: s ? round(n(s.avg_queue), 2) : null,
        max_queue_length: s ? n(s.max_queue) : null,
        samples: Number(s?.samples ?? 0),
      };
    });
  }

  async queue() {
    const backends = (await this.knex('backends').orderBy([
      { column: 'provider' },
      { column: 'name' },
    ])) as Row[];
    const tracked = (await this.knex('jobs')
      .select('provider', 'backend')
      .count({ n: '*' })
      .whereIn('status', ['queued', 'validating'])
      .groupBy('provider', 'backend')) as Row[];
    const t = new Map(tracked.map((r) => [`${r.provider}/${r.backend}`, Number(r.n)]));
    return backends.map((b) => ({
      provider: b.provider,
      backend: b.name,
      status: b.status,
      queue_length: n(b.queue_length),
      wait_seconds_avg: n(b.wait_seconds_avg),
      wait_seconds_p95: n(b.wait_seconds_p95),
      tracked_queued_jobs: t.get(`${b.provider}/${b.name}`) ?? 0,
      updated_at: iso(b.updated_at),
    }));
  }

  async statusDistribution(days: number) {
    const since = this.now() - days * DAY;
    const rows = (await this.knex('jobs')
      .select('provider', 'status')
      .count({ n: '*' })
      .where('created_at', '>=', since)
      .groupBy('provider', 'status')) as Row[];
    const total = rows.reduce((a, r) => a + Number(r.n), 0);
    const by: Record<string, { count: number; share: number | null }> = {};
    for (const r of rows) {
      by[String(r.status)] = by[String(r.status)] ?? { count: 0, share: null };
      const e = by[String(r.status)]!;
      e.count += Number(r.n);
    }
    for (const e of Object.values(by)) e.share = total === 0 ? null : round(e.count / total, 4);
    return {
      days,
      total,
      by_status: by,
      by_provider: rows.map((r) => ({ provider: r.provider, status: r.status, count: Number(r.n) })),
    };
  }

  async backendComparison(days: number) {
    const since = this.now() - days * DAY;
    const rows = (await this.knex('jobs')
      .select('provider', 'backend')
      .count({ jobs: '*' })
      .select(
        this.knex.raw("sum(case when status = 'completed' then 1 else 0 end) as completed"),
        this.knex.raw(
          "sum(case when status in ('completed','failed','cancelled') then 1 else 0 end) as finished",
        ),
        this.knex.raw(
          'avg(case when started_at is not null then (started_at - created_at) / 1000.0 end) as avg_queue_seconds',
        ),
        this.knex.raw(
          'avg(case when ended_at is not null and started_at is not null then (ended_at - started_at) / 1000.0 end) as avg_run_seconds',
        ),
        this.knex.raw('sum(coalesce(quantum_seconds, 0)) as quantum_seconds'),
      )
      .where('created_at', '>=', since)
      .whereNotNull('backend')
      .groupBy('provider', 'backend')
      .orderBy('jobs', 'desc')) as Row[];
    const util = new Map((await this.utilization(days)).map((u) => [`${u.provider}/${u.backend}`, u]));
    return rows.map((r) => {
      const u = util.get(`${r.provider}/${r.backend}`);
      return {
        provider: r.provider,
        backend: r.backend,
        jobs: Number(r.jobs),
        success_rate: Number(r.finished) === 0 ? null : round(Number(r.completed) / Number(r.finished), 4),
        avg_queue_seconds: round(n(r.avg_queue_seconds)),
        avg_run_seconds: round(n(r.avg_run_seconds)),
        quantum_seconds: round(n(r.quantum_seconds)),
        uptime: u?.uptime ?? null,
        avg_queue_length: u?.avg_queue_length ?? null,
      };
    });
  }

  async userActivity(days: number, limit: number) {
    const since = this.now() - days * DAY;
    const rows = (await this.knex('jobs')
      .select('provider', 'user_id')
      .count({ jobs: '*' })
      .sum({ qs: 'quantum_seconds' })
      .max({ last: 'created_at' })
      .select(this.knex.raw("sum(case when status = 'failed' then 1 else 0 end) as failed"))
      .where('created_at', '>=', since)
      .whereNotNull('user_id')
      .groupBy('provider', 'user_id')
      .orderBy('jobs', 'desc')
      .limit(limit)) as Row[];
    return rows.map((r) => ({
      provider: r.provider,
      user_id: r.user_id,
      jobs: Number(r.jobs),
      failed_jobs: Number(r.failed),
      quantum_seconds: round(n(r.qs)) ?? 0,
      last_active_at: iso(r.last),
    }));
  }

  async regional(days: number) {
    const since = this.now() - days * DAY;
    const backends = (await this.knex('backends')
      .select(this.knex.raw("coalesce(region, 'unknown') as region"))
      .count({ backends: '*' })
      .select(this.knex.raw("sum(case when status = 'online' then 1 else 0 end) as online"))
      .sum({ queued: 'queue_length' })
      .groupByRaw("coalesce(region, 'unknown')")) as Row[];
    const jobs = (await this.knex('jobs as j')
      .join('backends as b', function () {
        this.on('b.provider', 'j.provider').andOn('b.name', 'j.backend');
      })
      .select(this.knex.raw("coalesce(b.region, 'unknown') as region"))
      .count({ jobs: '*' })
      .sum({ qs: 'j.quantum_seconds' })
      .where('j.created_at', '>=', since)
      .groupByRaw("coalesce(b.region, 'unknown')")) as Row[];
    const jm = new Map(jobs.map((j) => [String(j.region), j]));
    return backends.map((b) => ({
      region: b.region,
      backends: Number(b.backends),
      online_backends: Number(b.online),
      queued_jobs: Number(b.queued ?? 0),
      jobs: Number(jm.get(String(b.region))?.jobs ?? 0),
      quantum_seconds: round(n(jm.get(String(b.region))?.qs)) ?? 0,
    }));
  }

  async usage() {
    const rows = (await this.knex('usage_snapshots')
      .select('provider')
      .max({ at: 'at' })
      .groupBy('provider')) as Row[];
    const out = [];
    for (const r of rows) {
      const u = (await this.knex('usage_snapshots').where({ provider: r.provider, at: r.at }).first()) as
        | Row
        | undefined;
      out.push({
        provider: r.provider,
        consumed_seconds: n(u!.consumed_seconds),
        limit_seconds: n(u!.limit_seconds),
        period_start: iso(u!.period_start),
        period_end: iso(u!.period_end),
        recorded_at: iso(u!.at),
      });
    }
    return out;
  }

  async syncHistory(limit: number) {
    const rows = (await this.knex('sync_runs').orderBy('id', 'desc').limit(limit)) as Row[];
    return rows.map((r) => ({
      provider: r.provider,
      kind: r.kind,
      started_at: iso(r.started_at),
      duration_ms: Number(r.finished_at) - Number(r.started_at),
      ok: Boolean(r.ok),
      error: r.error ?? null,
      jobs_seen: r.jobs_seen,
      jobs_changed: r.jobs_changed,
      backends_seen: r.backends_seen,
    }));
  }

  /** Finished jobs of the last `days` whose billed time the provider has not made final yet. */
  async billingPending(days: number): Promise<number> {
    const since = this.now() - days * DAY;
    const [{ n: c }] = (await this.knex('jobs')
      .where('created_at', '>=', since)
      .whereIn('status', ['completed', 'failed', 'cancelled'])
      .where('billing_final', false)
      .count({ n: '*' })) as [{ n: number | string }];
    return Number(c);
  }

  async providers() {
    const rows = (await this.knex('providers').orderBy('name')) as Row[];
    return rows.map((p) => ({
      name: p.name,
      region: p.region ?? null,
      last_sync_at: iso(p.last_sync_at),
      last_success_at: iso(p.last_success_at),
      last_error: p.last_error ?? null,
      last_error_at: iso(p.last_error_at),
      last_error_status: n(p.last_error_status),
      consecutive_failures: Number(p.consecutive_failures),
      healthy: p.last_success_at !== null && Number(p.consecutive_failures) === 0,
    }));
  }

  async tableCounts() {
    const out: Record<string, number> = {};
    for (const t of ['jobs', 'backends', 'backend_snapshots', 'job_transitions', 'sync_runs']) {
      const [{ n: c }] = (await this.knex(t).count({ n: '*' })) as [{ n: number | string }];
      out[t] = Number(c);
    }
    return out;
  }
}
