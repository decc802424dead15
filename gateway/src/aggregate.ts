import { analyticsDomains, MOUNTED } from '@qlab/registry';
import type { Response } from 'express';
import type { Upstream, UpstreamId } from './config';
import { type Fetched, fetchJson } from './upstream-client';
import { CONTRIBUTIONS } from './views/contributions';

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

  /** The services that add to views, each with its GET (its token, the views' deadline). */
  private contributors() {
    return MOUNTED.filter((s) => s.views).map((s) => ({
      service: s,
      contribution: CONTRIBUTIONS[s.id],
      get: (path: string) => this.get(s.id, path),
    }));
  }

  /** The seed's overview, extended to every service: each service's member (registry `views.overview`). */
  async overview(): Promise<{ results: Fetched[]; body: Record<string, unknown> }> {
    const parts = await Promise.all(
      this.contributors().flatMap(({ service, contribution, get }) =>
        service.views?.overview && contribution.overview
          ? [contribution.overview(get).then((part) => ({ key: service.views!.overview!, part }))]
          : [],
      ),
    );
    return {
      results: parts.flatMap((p) => p.part.results),
      body: {
        ...Object.fromEntries(parts.map((p) => [p.key, p.part.value])),
        generated_at: new Date().toISOString(),
      },
    };
  }

  /** The seed's result_counts, extended to every service: each service's hits (registry `views.search`). */
  async search(query: string, limit: number): Promise<{ results: Fetched[]; body: Record<string, unknown> }> {
    const q = {
      query,
      encoded: encodeURIComponent(query),
      limit,
      hashLike: /^[A-Za-z0-9_.-]{1,128}$/.test(query),
      // Looked up as an id only when it can be one: "." or ".." would become another path.
      idLike: /^[A-Za-z0-9][\w.:-]{0,127}$/.test(query),
    };
    const parts = await Promise.all(
      this.contributors().flatMap(({ service, contribution, get }) =>
        service.views?.search && contribution.search
          ? [contribution.search(get, q).then((part) => ({ key: service.views!.search!, part }))]
          : [],
      ),
    );
    const results = Object.fromEntries(parts.map((p) => [p.key, p.part.value]));
    const counts = Object.fromEntries(parts.map((p) => [p.key, p.part.value.length]));
    return {
      results: parts.flatMap((p) => p.part.results),
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
