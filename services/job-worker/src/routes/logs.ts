import { jsonBody, parseInput, serviceRouter } from '@qlab/kit';
import type { Router } from 'express';
import type { JobLogs } from '../storage/job-logs';
import { appendLogsSchema, logsQuery } from './schemas';

/** A job's log lines: written by the worker holding it, read by anyone who may read jobs. */
export function logRoutes(logs: JobLogs): Router {
  const router = serviceRouter();
  const json = jsonBody();

  router.post('/jobs/:id/logs', json, async (req, res) => {
    const b = parseInput(appendLogsSchema, req.body, 'log lines');
    res.json(
      await logs.append(String(req.params.id), { workerId: b.worker_id, attempt: b.attempt }, b.lines),
    );
  });

  router.get('/jobs/:id/logs', async (req, res) => {
    const q = parseInput(logsQuery, req.query, 'query');
    res.json(await logs.page(String(req.params.id), q.after, q.limit));
  });

  return router;
}
