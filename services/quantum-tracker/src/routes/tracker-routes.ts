import { notFound, parseInput, serviceRouter } from '@qlab/kit';
import type express from 'express';
import type { Router } from 'express';
import { z } from 'zod';
import type { AnswerCache } from '../answer-cache';
import { BACKEND_STATUSES, JOB_STATUSES } from '../providers/types';
import type { TrackerQueries } from '../storage/queries';
import type { ProviderSync, SyncKind } from '../sync/sync-loop';

export interface TrackerRouteDeps {
  queries: TrackerQueries;
  syncs: ProviderSync[];
  pricePerQuantumSecond: number;
  currency: string;
  startedAt: number;
  /** Changes whenever recorded data may have changed (each finished sync). */
  dataVersion: () => number;
  /** Where GET answers are kept (shared with the server's short path, see fast-answers.ts). */
  cache: AnswerCache;
}

/** Whose jobs the tracker can see: each provider lists only the key owner's. */
export const JOBS_SCOPE =
  "Jobs are those of the configured API keys' owners: IBM's /v1/jobs lists the key owner's jobs in the instance, IonQ's the jobs the key may view. To see every member of a lab, configure each member's key (IBM_QUANTUM_TOKEN=alice:KEY,bob:KEY); backends and queues are the instance's.";

export const NO_PROVIDER_NOTICE =
  'No quantum provider is configured: set IBM_QUANTUM_TOKEN and IBM_QUANTUM_INSTANCE, or IONQ_API_KEY. The tracker serves only data recorded from real providers, so there is none to show.';

const name = z.string().min(1).max(128);
const when = z.iso.datetime({ offset: true }).transform((s) => Date.parse(s));
const page = z.object({
  limit: z.coerce.number().int().min(1).max(500).default(50),
  offset: z.coerce.number().int().min(0).max(10_000_000).default(0),
});
const jobFilters = z.object({
  provider: name.optional(),
  backend: name.optional(),
  status: z.enum(JOB_STATUSES).optional(),
  program: name.optional(),
  user_id: name.optional(),
  since: when.optional(),
  until: when.optional(),
});
const days = (fallback: number) =>
  z.object({ days: z.coerce.number().int().min(1).max(366).default(fallback) });
const limitOnly = (fallback: number) =>
  z.object({ limit: z.coerce.number().int().min(1).max(100).default(fallback) });
const hours = z.object({
  hours: z.coerce
    .number()
    .int()
    .min(1)
    .max(24 * 90)
    .default(24),
});

/** The seed's API at /api/v1: jobs, backends, queue, dashboard and analytics. */
export function trackerRoutes(deps: TrackerRouteDeps): Router {
  const { queries: q, syncs } = deps;
  const r = serviceRouter();
  const configured = syncs.length > 0;
  const { cache } = deps;
  // GETs are answered from the cache; the key is the whole URL, parameters included. The
  // version is read before the handler runs, so an answer computed during a sync is not kept.
  r.use('/api/v1', (req, res, next) => {
    // Without a provider there is nothing to cache (and every answer carries the notice).
    // Hits are served by the request listener before Express (fast-answers.ts); this records.
    if (req.method !== 'GET' || !configured) return next();
    const version = deps.dataVersion();
    res.json = (body: unknown) => {
      const text = JSON.stringify(body);
      if (res.statusCode === 200) cache.put(req.originalUrl, text, version);
      return res.type('application/json').send(text);
    };
    next();
  });
  const answer =
    (handler: (req: express.Request) => Promise<unknown>) =>
    async (req: express.Request, res: express.Response) => {
      res.json(await handler(req));
    };

  // With no provider, every answer carries the notice next to its (empty) data.
  r.use('/api/v1', (_req, res, next) => {
    if (!configured) {
      const json = res.json.bind(res);
      res.json = (body: unknown) =>
        json(
          body && typeof body === 'object' && !Array.isArray(body)
            ? { ...body, notice: NO_PROVIDER_NOTICE }
            : body,
        );
    }
    next();
  });

  const syncAll = async (kind: SyncKind, provider?: string) => {
    const targets = syncs.filter((s) => !provider || s.name === provider);
    if (provider && targets.length === 0) throw notFound(`provider ${provider} is not configured`);
    return { synced: await Promise.all(targets.map((s) => s.sync(kind))) };
  };
  const providerParam = z.object({ provider: name.optional() });

  // Jobs
  r.get('/api/v1/jobs', async (req, res) => {
    const f = parseInput(jobFilters.extend(page.shape).strict(), req.query, 'query');
    const { limit, offset, ...filters } = f;
    res.json(await q.jobs(filters, limit, offset));
  });
  r.get('/api/v1/jobs/recent', async (req, res) => {
    const { limit } = parseInput(limitOnly(20), req.query, 'query');
    res.json(await q.jobs({}, limit, 0));
  });
  r.post('/api/v1/jobs/sync', async (req, res) => {
    res.json(await syncAll('jobs', parseInput(providerParam, req.query, 'query').provider));
  });
  r.get(
    '/api/v1/jobs/stats/overview',
    answer(() => q.jobStats()),
  );
  r.get(
    '/api/v1/jobs/trends/daily',
    answer(async (req) => {
      const { days: d } = parseInput(days(30), req.query, 'query');
      return { days: d, trends: await q.dailyTrends(d) };
    }),
  );
  r.get('/api/v1/jobs/by-backend/:backend', async (req, res) => {
    const { backend } = parseInput(z.object({ backend: name }), req.params, 'path');
    const p = parseInput(page, req.query, 'query');
    res.json({ backend, ...(await q.jobs({ backend }, p.limit, p.offset)) });
  });
  r.get('/api/v1/jobs/by-status/:status', async (req, res) => {
    const { status } = parseInput(z.object({ status: z.enum(JOB_STATUSES) }), req.params, 'path');
    const p = parseInput(page, req.query, 'query');
    res.json({ status, ...(await q.jobs({ status }, p.limit, p.offset)) });
  });
  r.get('/api/v1/jobs/:id', async (req, res) => {
    const { id } = parseInput(z.object({ id: name }), req.params, 'path');
    const job = await q.job(id);
    if (!job) throw notFound(`job ${id} has not been seen at any configured provider`);
    res.json(job);
  });

  // Backends
  r.get('/api/v1/backends', async (req, res) => {
    const f = parseInput(
      z.object({ provider: name.optional(), status: z.enum(BACKEND_STATUSES).optional() }),
      req.query,
      'query',
    );
    const backends = await q.backends(f);
    res.json({ backends, total: backends.length });
  });
  r.post('/api/v1/backends/sync', async (req, res) => {
    res.json(await syncAll('backends', parseInput(providerParam, req.query, 'query').provider));
  });
  r.get(
    '/api/v1/backends/stats/overview',
    answer(() => q.backendStats()),
  );
  r.get(
    '/api/v1/backends/utilization/weekly',
    answer(async () => ({ days: 7, backends: await q.utilization(7) })),
  );
  const filtered = (path: string, where: Parameters<TrackerQueries['backends']>[0]) =>
    r.get(`/api/v1/backends/filter/${path}`, async (_req, res) => {
      const backends = await q.backends(where);
      res.json({ backends, total: backends.length });
    });
  filtered('operational', { status: 'online' });
  filtered('simulators', { is_simulator: true });
  filtered('real-devices', { is_simulator: false });
  r.get('/api/v1/backends/:name', async (req, res) => {
    const p = parseInput(z.object({ name }), req.params, 'path');
    const b = await q.backend(p.name, parseInput(hours, req.query, 'query').hours);
    if (!b) throw notFound(`backend ${p.name} has not been seen at any configured provider`);
    res.json(b);
  });

  // Queue
  r.get('/api/v1/queue', async (_req, res) => {
    res.json({ queues: await q.queue() });
  });
  r.get(
    '/api/v1/queue/summary',
    answer(() => queueSummary(q)),
  );
  const byWait = async (desc: boolean, limit: number) => {
    const online = (await q.queue()).filter(
      (x) => x.status === 'online' && (x.wait_seconds_avg ?? x.queue_length) !== null,
    );
    const key = (x: (typeof online)[number]) => x.wait_seconds_avg ?? x.queue_length ?? 0;
    return online.sort((a, b) => (desc ? key(b) - key(a) : key(a) - key(b))).slice(0, limit);
  };
  r.get('/api/v1/queue/longest-wait', async (req, res) => {
    res.json({ queues: await byWait(true, parseInput(limitOnly(5), req.query, 'query').limit) });
  });
  r.get('/api/v1/queue/shortest-wait', async (req, res) => {
    res.json({ queues: await byWait(false, parseInput(limitOnly(5), req.query, 'query').limit) });
  });
  r.get('/api/v1/queue/by-backend/:name', async (req, res) => {
    const p = parseInput(z.object({ name }), req.params, 'path');
    const b = await q.backend(p.name, parseInput(hours, req.query, 'query').hours);
    if (!b) throw notFound(`backend ${p.name} has not been seen at any configured provider`);
    res.json({
      provider: b.provider,
      backend: b.name,
      status: b.status,
      queue_length: b.queue_length,
      wait_seconds_avg: b.wait_seconds_avg,
      wait_seconds_p95: b.wait_seconds_p95,
      history: b.history,
    });
  });

  // Dashboard
  const systemStatus = async () => {
    const providers = await q.providers();
    return {
      status: !configured ? 'no_provider' : providers.every((p) => p.healthy) ? 'ok' : 'degraded',
      providers_configured: providers.map((p) => p.name),
      providers,
      jobs_scope: JOBS_SCOPE,
      uptime_seconds: Math.round((Date.now() - deps.startedAt) / 1000),
    };
  };
  r.get(
    '/api/v1/dashboard',
    answer(async () => ({
      system_status: await systemStatus(),
      job_stats: await q.jobStats(),
      backend_stats: await q.backendStats(),
      queue_summary: await queueSummary(q),
      recent_jobs: (await q.jobs({}, 10, 0)).jobs,
      usage: await q.usage(),
    })),
  );
  r.get(
    '/api/v1/dashboard/stats/jobs',
    answer(() => q.jobStats()),
  );
  r.get(
    '/api/v1/dashboard/stats/backends',
    answer(() => q.backendStats()),
  );
  r.get('/api/v1/dashboard/system-status', async (_req, res) => {
    res.json(await systemStatus());
  });
  r.post('/api/v1/dashboard/refresh', async (_req, res) => {
    res.json(await syncAll('all'));
  });
  r.get('/api/v1/dashboard/health', async (_req, res) => {
    const s = await systemStatus();
    res.json({
      status: s.status,
      providers: s.providers.map((p) => ({ name: p.name, healthy: p.healthy, last_error: p.last_error })),
    });
  });
  r.get('/api/v1/dashboard/metrics', async (_req, res) => {
    res.json({ rows: await q.tableCounts(), recent_syncs: await q.syncHistory(20), usage: await q.usage() });
  });

  // Analytics
  r.get(
    '/api/v1/analytics/job-trends',
    answer(async (req) => {
      const { days: d } = parseInput(days(30), req.query, 'query');
      return { days: d, trends: await q.dailyTrends(d) };
    }),
  );
  r.get(
    '/api/v1/analytics/backend-utilization',
    answer(async (req) => {
      const { days: d } = parseInput(days(7), req.query, 'query');
      return { days: d, backends: await q.utilization(d) };
    }),
  );
  r.get(
    '/api/v1/analytics/status-distribution',
    answer(async (req) => {
      return await q.statusDistribution(parseInput(days(30), req.query, 'query').days);
    }),
  );
  r.get(
    '/api/v1/analytics/backend-comparison',
    answer(async (req) => {
      const { days: d } = parseInput(days(30), req.query, 'query');
      return { days: d, backends: await q.backendComparison(d) };
    }),
  );
  r.get(
    '/api/v1/analytics/performance-metrics',
    answer(async (req) => {
      const { days: d } = parseInput(days(30), req.query, 'query');
      const since = Date.now() - d * 86_400_000;
      const stats = await q.jobStats({ since });
      return {
        days: d,
        success_rate: stats.success_rate,
        failure_rate:
          stats.success_rate === null ? null : Math.round((1 - stats.success_rate) * 10_000) / 10_000,
        avg_queue_seconds: stats.avg_queue_seconds,
        avg_run_seconds: stats.avg_run_seconds,
        jobs_per_day: Math.round((stats.total_jobs / d) * 100) / 100,
        quantum_seconds: stats.quantum_seconds,
        total_jobs: stats.total_jobs,
      };
    }),
  );
  r.get(
    '/api/v1/analytics/cost-analysis',
    answer(async (req) => {
      const { days: d } = parseInput(days(30), req.query, 'query');
      const price = deps.pricePerQuantumSecond;
      const cost = (s: number | null) => Math.round((s ?? 0) * price * 100) / 100;
      const backends = await q.backendComparison(d);
      const trends = await q.dailyTrends(d);
      const total = backends.reduce((a, b) => a + (b.quantum_seconds ?? 0), 0);
      return {
        days: d,
        price_per_quantum_second: price,
        currency: deps.currency,
        total_quantum_seconds: Math.round(total * 1000) / 1000,
        total_cost: cost(total),
        by_backend: backends.map((b) => ({
          provider: b.provider,
          backend: b.backend,
          quantum_seconds: b.quantum_seconds,
          cost: cost(b.quantum_seconds),
        })),
        by_day: trends.map((t) => ({
          date: t.date,
          quantum_seconds: t.quantum_seconds,
          cost: cost(t.quantum_seconds),
        })),
        provider_usage: await q.usage(),
        // Costs grow until the provider has billed every job: these are still counting.
        billing_pending_jobs: await q.billingPending(d),
      };
    }),
  );
  r.get(
    '/api/v1/analytics/user-activity',
    answer(async (req) => {
      const { days: d } = parseInput(days(30), req.query, 'query');
      const { limit } = parseInput(limitOnly(20), req.query, 'query');
      return { days: d, users: await q.userActivity(d, limit) };
    }),
  );
  r.get(
    '/api/v1/analytics/regional-stats',
    answer(async (req) => {
      const { days: d } = parseInput(days(30), req.query, 'query');
      return { days: d, regions: await q.regional(d) };
    }),
  );

  return r;
}

async function queueSummary(q: TrackerQueries) {
  const queues = await q.queue();
  const online = queues.filter((x) => x.status === 'online');
  const lengths = online.map((x) => x.queue_length).filter((x): x is number => x !== null);
  const busiest = [...online].sort((a, b) => (b.queue_length ?? -1) - (a.queue_length ?? -1))[0];
  return {
    backends: queues.length,
    online_backends: online.length,
    total_queued_jobs: lengths.reduce((a, b) => a + b, 0),
    avg_queue_length:
      lengths.length === 0
        ? null
        : Math.round((lengths.reduce((a, b) => a + b, 0) / lengths.length) * 100) / 100,
    busiest_backend: busiest
      ? { provider: busiest.provider, backend: busiest.backend, queue_length: busiest.queue_length }
      : null,
    tracked_queued_jobs: queues.reduce((a, x) => a + x.tracked_queued_jobs, 0),
  };
}
