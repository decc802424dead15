import { serviceRouter } from '@qlab/kit';
import type { Router } from 'express';
import { analyticsRoutes } from './analytics-routes';
import { backendsRoutes } from './backends-routes';
import { routeContext, type TrackerRouteDeps } from './context';
import { dashboardRoutes } from './dashboard-routes';
import { jobsRoutes } from './jobs-routes';
import { queueRoutes } from './queue-routes';

/**
 * The seed's API at /api/v1, one file per resource: jobs, backends, queue, dashboard and
 * analytics. Every handler returns its body through `answer` (answer.ts), which adds the
 * no-provider notice and keeps GET answers for the fast path.
 */
export function trackerRoutes(deps: TrackerRouteDeps): Router {
  const r = serviceRouter();
  const ctx = routeContext(deps);
  jobsRoutes(r, ctx);
  backendsRoutes(r, ctx);
  queueRoutes(r, ctx);
  dashboardRoutes(r, ctx);
  analyticsRoutes(r, ctx);
  return r;
}
