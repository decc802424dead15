import { notFound, parseInput } from '@qlab/kit';
import type { Router } from 'express';
import { z } from 'zod';
import { JOB_STATUSES } from '../providers/types';
import type { RouteContext } from './context';
import { days, jobFilters, limitOnly, name, page, providerParam } from './params';

/** /api/v1/jobs: the jobs recorded from the providers, their stats and trends. */
export function jobsRoutes(r: Router, { q, answer, syncNow }: RouteContext): void {
  r.get(
    '/api/v1/jobs',
    answer(async (req) => {
      const { limit, offset, ...filters } = parseInput(
        jobFilters.extend(page.shape).strict(),
        req.query,
        'query',
      );
      return q.jobs(filters, limit, offset);
    }),
  );
  r.get(
    '/api/v1/jobs/recent',
    answer(async (req) => q.jobs({}, parseInput(limitOnly(20), req.query, 'query').limit, 0)),
  );
  r.post(
    '/api/v1/jobs/sync',
    answer(async (req) => syncNow('jobs', parseInput(providerParam, req.query, 'query').provider)),
  );
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
  r.get(
    '/api/v1/jobs/by-backend/:backend',
    answer(async (req) => {
      const { backend } = parseInput(z.object({ backend: name }), req.params, 'path');
      const p = parseInput(page, req.query, 'query');
      return { backend, ...(await q.jobs({ backend }, p.limit, p.offset)) };
    }),
  );
  r.get(
    '/api/v1/jobs/by-status/:status',
    answer(async (req) => {
      const { status } = parseInput(z.object({ status: z.enum(JOB_STATUSES) }), req.params, 'path');
      const p = parseInput(page, req.query, 'query');
      return { status, ...(await q.jobs({ status }, p.limit, p.offset)) };
    }),
  );
  r.get(
    '/api/v1/jobs/:id',
    answer(async (req) => {
      const { id } = parseInput(z.object({ id: name }), req.params, 'path');
      const job = await q.job(id);
      if (!job) throw notFound(`job ${id} has not been seen at any configured provider`);
      return job;
    }),
  );
}
