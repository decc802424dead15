import type { Router } from 'express';
import type { RouteContext } from './context';
import { queueSummary } from './queue-routes';

/** Whose jobs the tracker can see: each provider lists only the key owner's. */
export const JOBS_SCOPE =
  "Jobs are those of the configured API keys' owners: IBM's /v1/jobs lists the key owner's jobs in the instance, IonQ's the jobs the key may view. To see every member of a lab, configure each member's key (IBM_QUANTUM_TOKEN=alice:KEY,bob:KEY); backends and queues are the instance's.";

/** /api/v1/dashboard: everything at a glance, the providers' health, a sync of everything now. */
export function dashboardRoutes(r: Router, { q, answer, syncNow, configured, deps }: RouteContext): void {
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
  r.get(
    '/api/v1/dashboard/system-status',
    answer(() => systemStatus()),
  );
  r.post(
    '/api/v1/dashboard/refresh',
    answer(() => syncNow('all')),
  );
  r.get(
    '/api/v1/dashboard/health',
    answer(async () => {
      const s = await systemStatus();
      return {
        status: s.status,
        providers: s.providers.map((p) => ({ name: p.name, healthy: p.healthy, last_error: p.last_error })),
      };
    }),
  );
  r.get(
    '/api/v1/dashboard/metrics',
    answer(async () => ({
      rows: await q.tableCounts(),
      recent_syncs: await q.syncHistory(20),
      usage: await q.usage(),
    })),
  );
}
