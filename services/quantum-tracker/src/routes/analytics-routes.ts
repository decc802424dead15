import { parseInput } from '@qlab/kit';
import type { Router } from 'express';
import type { RouteContext } from './context';
import { days, limitOnly } from './params';

/** /api/v1/analytics: trends, utilization, comparisons and costs over a window of days. */
export function analyticsRoutes(r: Router, { q, answer, deps }: RouteContext): void {
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
}
