import { parseInput } from '@qlab/kit';
import type { Router } from 'express';
import type { TrackerQueries } from '../storage/queries';
import { backendNamed, type RouteContext } from './context';
import { limitOnly } from './params';

/** The totals of every backend's queue (also part of the dashboard). */
export async function queueSummary(q: TrackerQueries) {
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

/** /api/v1/queue: queue lengths and waits per backend. */
export function queueRoutes(r: Router, { q, answer }: RouteContext): void {
  r.get(
    '/api/v1/queue',
    answer(async () => ({ queues: await q.queue() })),
  );
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
  r.get(
    '/api/v1/queue/longest-wait',
    answer(async (req) => ({
      queues: await byWait(true, parseInput(limitOnly(5), req.query, 'query').limit),
    })),
  );
  r.get(
    '/api/v1/queue/shortest-wait',
    answer(async (req) => ({
      queues: await byWait(false, parseInput(limitOnly(5), req.query, 'query').limit),
    })),
  );
  r.get(
    '/api/v1/queue/by-backend/:name',
    answer(async (req) => {
      const b = await backendNamed(q, req);
      return {
        provider: b.provider,
        backend: b.name,
        status: b.status,
        queue_length: b.queue_length,
        wait_seconds_avg: b.wait_seconds_avg,
        wait_seconds_p95: b.wait_seconds_p95,
        history: b.history,
      };
    }),
  );
}
