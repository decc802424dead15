import { parseInput } from '@qlab/kit';
import type { Router } from 'express';
import { z } from 'zod';
import { BACKEND_STATUSES } from '../providers/types';
import type { TrackerQueries } from '../storage/queries';
import { backendNamed, type RouteContext } from './context';
import { name, providerParam } from './params';

/** /api/v1/backends: the providers' devices and simulators, with status and history. */
export function backendsRoutes(r: Router, { q, answer, syncNow }: RouteContext): void {
  r.get(
    '/api/v1/backends',
    answer(async (req) => {
      const f = parseInput(
        z.object({ provider: name.optional(), status: z.enum(BACKEND_STATUSES).optional() }),
        req.query,
        'query',
      );
      const backends = await q.backends(f);
      return { backends, total: backends.length };
    }),
  );
  r.post(
    '/api/v1/backends/sync',
    answer(async (req) => syncNow('backends', parseInput(providerParam, req.query, 'query').provider)),
  );
  r.get(
    '/api/v1/backends/stats/overview',
    answer(() => q.backendStats()),
  );
  r.get(
    '/api/v1/backends/utilization/weekly',
    answer(async () => ({ days: 7, backends: await q.utilization(7) })),
  );
  const filtered = (path: string, where: Parameters<TrackerQueries['backends']>[0]) =>
    r.get(
      `/api/v1/backends/filter/${path}`,
      answer(async () => {
        const backends = await q.backends(where);
        return { backends, total: backends.length };
      }),
    );
  filtered('operational', { status: 'online' });
  filtered('simulators', { is_simulator: true });
  filtered('real-devices', { is_simulator: false });
  r.get(
    '/api/v1/backends/:name',
    answer(async (req) => {
      const b = await backendNamed(q, req);
      return b;
    }),
  );
}
