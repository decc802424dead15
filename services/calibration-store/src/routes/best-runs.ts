import type { Outbox } from '@qlab/events';
import { notFound, parseInput, serviceRouter } from '@qlab/kit';
import type { Request, Router } from 'express';
import { formatTimestamp } from '../domain/archives';
import type { CalibrationEvents } from '../events';
import type { BestRun, BestRunsStore } from '../storage/best-runs-store';
import { formFields } from '../upload/receive-multipart';
import { bestRunFields, bestRunsLimit } from './schemas';

/** As QIBO DB answers a best run. */
const present = (r: BestRun) => ({
  id: r.id,
  calibration_hash_id: r.calibrationHashID,
  run_id: r.runId,
  created_at: formatTimestamp(r.createdAt),
});

/**
 * QIBO DB's best runs (upstream 09dd8c2): which run of a calibration is the one to use.
 * POST /bestruns/set (JSON, urlencoded or multipart form), GET /bestruns/get (the newest),
 * GET /bestruns/list?limit= (newest first, default 10, clamped to 1-100). Each set publishes
 * `bestrun.set`.
 */
export function bestRunRoutes(store: BestRunsStore, outbox: Outbox<CalibrationEvents> | undefined): Router {
  const router = serviceRouter();
  const body = async (req: Request) => (req.is('multipart/form-data') ? formFields(req) : (req.body ?? {}));

  router.post('/set', async (req, res) => {
    const f = parseInput(bestRunFields, await body(req), 'body');
    const saved = await store.set(
      f.calibrationHashID,
      f.runID,
      (trx, r) =>
        outbox?.record(trx, 'bestrun.set', `bestruns/${r.id}`, {
          ...present(r),
          created_at: new Date(r.createdAt).toISOString(),
        }) ?? Promise.resolve(),
    );
    outbox?.written();
    res.json({ status: 'ok', ...present(saved) });
  });

  router.get('/get', async (_req, res) => {
    const [newest] = await store.newest(1);
    if (!newest) throw notFound('no best run set');
    res.json({ status: 'ok', ...present(newest) });
  });

  router.get('/list', async (req, res) => {
    const { limit } = parseInput(bestRunsLimit, req.query, 'query');
    res.json({ status: 'ok', items: (await store.newest(limit)).map(present) });
  });

  return router;
}
