import { analyticsDomains } from '@qlab/registry';
import type { Response } from 'express';
import type { Upstream, UpstreamId } from './config';
import { type Fetched, fetchJson } from './upstream-client';

const DOMAINS = analyticsDomains;

/**
 * Cross-service views. Every service is asked at once (no call waits for another), each with its
 * own deadline, so a view takes at most one deadline; a service that fails or is late is named
 * in `errors` and `completed` is false (also in the X-Gateway-Completed header), never a 500 for
 * the whole call. Only when every service fails is the answer 502 (or 504 when they all timed
 * out). A service disabled in the gateway's --config is not asked: it is listed in
 * `disabled_services` and does not make the answer incomplete; a view whose every service is
 * disabled is a 503.
 */
export class Aggregator {
  private readonly byId: Map<UpstreamId, Upstream>;
  constructor(
    upstreams: Upstream[],
    private readonly timeoutMs: number,
  ) {
    this.byId = new Map(upstreams.map((u) => [u.id, u]));
  }

  private get(id: UpstreamId, path: string) {
    return fetchJson(this.byId.get(id)!, path, this.timeoutMs);
  }

  static send(res: Response, all: Fetched[], body: Record<string, unknown>): void {
    const disabled = [...new Set(all.filter((r) => !r.ok && r.disabled).map((r) => r.service))];
    const results = all.filter((r) => r.ok || !r.disabled);
    if (results.length === 0 && disabled.length > 0) {
      res
        .status(503)
        .type('application/problem+json')
        .json({
          type: 'about:blank',
          title: 'Service Unavailable',
          status: 503,
          code: 'SERVICE_DISABLED',
          detail: `every service this view reads is disabled in the gateway's --config: ${disabled.join(', ')}`,
        });
      return;
    }
    const failed = results.filter((r) => !r.ok) as Extract<Fetched, { ok: false }>[];
    const completed = failed.length === 0;
    res.setHeader('X-Gateway-Completed', String(completed));
    const errors = Object.fromEntries(
      failed.map((f) => [f.service, { error: f.error, status: f.status ?? null }]),
    );
    if (failed.length === results.length && results.length > 0) {
      const timedOut = failed.every((f) => f.error.startsWith('no answer'));
      res
        .status(timedOut ? 504 : 502)
        .type('application/problem+json')
        .json({
          type: 'about:blank',
          title: timedOut ? 'Gateway Timeout' : 'Bad Gateway',
          status: timedOut ? 504 : 502,
          detail: 'no service answered',
          errors,
        });
      return;
    }
    res.json({
      ...body,
      completed,
      missing_services: failed.map((f) => f.service),
      errors,
      ...(disabled.length > 0 ? { disabled_services: disabled } : {}),
    });
  }

  async overview(): Promise<{ results: Fetched[]; body: Record<string, unknown> }> {
    const [analytics, [calibrations, results, uploads, jobs, tracker]] = await Promise.all([
      Promise.all(DOMAINS.map((d) => this.get(`analytics-${d}`, `/api/${d}/db/stats`))),
      Promise.all([
        this.get('calibration-store', '/calibrations/list?limit=1'),
        this.get('calibration-store', '/results/list?limit=1'),
        this.get('chunked-upload', '/stats'),
        this.get('job-worker', '/jobs/stats'),
        this.get('quantum-tracker', '/api/v1/dashboard/stats/jobs'),
      ]),
    ]);
    const data = (f: Fetched) => (f.ok ? f.data : null);
    const total = (f: Fetched) => (f.ok ? ((f.data as { total?: number }).total ?? null) : null);
    return {
      results: [...analytics, calibrations, results, uploads, jobs, tracker],
      body: {
        test_stats: data(analytics[0]!),
        generator_stats: data(analytics[1]!),
        benchmark_stats: data(analytics[2]!),
        calibration_stats:
          calibrations.ok || results.ok
            ? { calibrations: total(calibrations), results: total(results) }
            : null,
        upload_stats: data(uploads),
        job_stats: data(jobs),
        tracker_stats: data(tracker),
        generated_at: new Date().toISOString(),
      },
    };
  }

  /** The seed's result_counts, extended to every service. */
  async search(query: string, limit: number): Promise<{ results: Fetched[]; body: Record<string, unknown> }> {
    const q = encodeURIComponent(query);
    const hashLike = /^[A-Za-z0-9_.-]{1,128}$/.test(query);
    // Looked up as an id only when it can be one: "." or ".." would become another path.
    const idLike = /^[A-Za-z0-9][\w.:-]{0,127}$/.test(query);
    const [analytics, [calByHash, calRecent, uploads, jobsByType, jobById, trackerJob, trackerBackends]] =
      await Promise.all([
        Promise.all(
          DOMAINS.map((d) => this.get(`analytics-${d}`, `/api/${d}/db/search?q=${q}&limit=${limit}`)),
        ),
        Promise.all([
          hashLike
            ? this.get('calibration-store', `/calibrations/list?hashID=${q}&limit=${limit}`)
            : Promise.resolve(null),
          this.get('calibration-store', '/calibrations/list?limit=500'),
          this.get('chunked-upload', `/uploads?q=${q}&limit=${limit}`),
          this.get('job-worker', `/jobs?task_type=${q}&limit=${limit}`),
          idLike ? this.get('job-worker', `/jobs/${q}`) : Promise.resolve(null),
          idLike ? this.get('quantum-tracker', `/api/v1/jobs/${q}`) : Promise.resolve(null),
          this.get('quantum-tracker', '/api/v1/backends'),
        ]),
      ]);
    type Items = { items?: Record<string, unknown>[] };
    const needle = query.toLowerCase();
    const calibrations = new Map<string, Record<string, unknown>>();
    for (const f of [calByHash, calRecent]) {
      if (!f?.ok) continue;
      for (const item of (f.data as Items).items ?? []) {
        const text = `${item.hashID ?? ''} ${item.notes ?? ''}`.toLowerCase();
        if (text.includes(needle)) calibrations.set(String(item.id ?? item.hashID), item);
      }
    }
    const jobs: unknown[] = [...((jobsByType.ok ? (jobsByType.data as Items).items : undefined) ?? [])];
    if (jobById?.ok) jobs.unshift(jobById.data);
    const trackerHits: unknown[] = [];
    if (trackerJob?.ok) trackerHits.push({ kind: 'job', ...(trackerJob.data as object) });
    if (trackerBackends.ok) {
      for (const b of (trackerBackends.data as { backends?: { name: string }[] }).backends ?? []) {
        if (b.name.toLowerCase().includes(needle)) trackerHits.push({ kind: 'backend', ...b });
      }
    }
    const analyticsResults = analytics.map((a) =>
      a.ok ? ((a.data as { results?: unknown[] }).results ?? []) : [],
    );
    const uploadItems = uploads.ok ? ((uploads.data as Items).items ?? []) : [];
    const results = {
      test: analyticsResults[0]!,
      generator: analyticsResults[1]!,
      benchmark: analyticsResults[2]!,
      calibrations: [...calibrations.values()].slice(0, limit),
      uploads: uploadItems,
      jobs: jobs.slice(0, limit),
      tracker: trackerHits.slice(0, limit),
    };
    const counts = Object.fromEntries(Object.entries(results).map(([k, v]) => [k, v.length]));
    // A 404 for "no job with that id" is an answer, not a failure.
    const notMissing = (f: Fetched | null) => !f || f.ok || f.status === 404;
    const considered = [
      ...analytics,
      calRecent,
      uploads,
      jobsByType,
      trackerBackends,
      ...[calByHash, jobById, trackerJob].filter((f): f is Fetched => !notMissing(f)),
    ];
    return {
      results: considered,
      body: {
        query,
        limit,
        results,
        result_counts: { ...counts, total: Object.values(counts).reduce((a, b) => a + b, 0) },
      },
    };
  }

  /** The seed's unified model view from the three analytics domains. */
  async model(name: string, recent: number): Promise<{ results: Fetched[]; body: Record<string, unknown> }> {
    const n = encodeURIComponent(name);
    const results = await Promise.all(
      DOMAINS.map((d) => this.get(`analytics-${d}`, `/api/${d}/db/models/${n}?recent=${recent}`)),
    );
    type Summary = { total?: number; success_rate?: number | null; [k: string]: unknown };
    const s = results.map((r) => (r.ok ? (r.data as Summary) : null));
    const rate = (x: Summary | null) => x?.success_rate ?? null;
    return {
      results,
      body: {
        model: name,
        overview: {
          total_test_runs: s[0]?.total ?? null,
          total_generator_tasks: s[1]?.total ?? null,
          total_benchmark_runs: s[2]?.total ?? null,
          test_success_rate: rate(s[0]!),
          generator_success_rate: rate(s[1]!),
          benchmark_success_rate: rate(s[2]!),
        },
        recent_test_runs: s[0]?.recent_runs ?? [],
        recent_generator_tasks: s[1]?.recent_tasks ?? [],
        recent_benchmark_runs: s[2]?.recent_runs ?? [],
        test: s[0],
        generator: s[1],
        benchmark: s[2],
      },
    };
  }
}
