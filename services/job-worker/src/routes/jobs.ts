import { rm } from 'node:fs/promises';
import path from 'node:path';
import { badRequest, conflict, parseInput, unsupportedMediaType } from '@qlab/kit';
import busboy from 'busboy';
import { type Request, type Response, Router } from 'express';
import type { Job, NewJob } from '../domain/job';
import type { JobRepository } from '../storage/job-repository';
import type { JobWorkspace, SavedJobFile } from '../storage/workspace';
import {
  batchSchema,
  claimSchema,
  completeSchema,
  failSchema,
  heartbeatSchema,
  leaseSchema,
  listQuery,
  newJobSchema,
} from './schemas';

export interface JobRouteDeps {
  repo: JobRepository;
  workspace: JobWorkspace;
  leaseMs: number;
  /** Largest input file for multipart job creation and output uploads. */
  maxFileBytes: number;
}

/** Multipart job creation: fields (task_type, params as JSON, …) and files that become input/<name>. */
async function receiveMultipartJob(
  req: Request,
  workspace: JobWorkspace,
  jobId: string,
  maxFileBytes: number,
) {
  const fields: Record<string, string> = {};
  const files: SavedJobFile[] = [];
  const saving: Promise<unknown>[] = [];
  await workspace.create(jobId);
  await new Promise<void>((resolve, reject) => {
    let parser: busboy.Busboy;
    try {
      parser = busboy({ headers: req.headers, limits: { files: 100, fields: 50, fileSize: maxFileBytes } });
    } catch (err) {
      reject(badRequest(`malformed multipart request: ${(err as Error).message}`));
      return;
    }
    parser.on('field', (name, value) => {
      fields[name] = value;
    });
    parser.on('file', (_name, stream, info) => {
      // Only the base name is kept: a client cannot choose where in the workspace files go.
      const base =
        path.basename((info.filename ?? '').replace(/\\/g, '/')).replace(/[\u0000-\u001f]/g, '') ||
        `file-${files.length}`;
      let tooBig = false;
      stream.on('limit', () => {
        tooBig = true;
      });
      const p = workspace.save(jobId, `input/${base}`, stream).then((saved) => {
        if (tooBig) throw badRequest(`input file ${base} is larger than ${maxFileBytes} bytes`);
        files.push(saved);
      });
      saving.push(p);
      p.catch(() => undefined);
    });
    parser.on('error', (err: Error) => reject(badRequest(`malformed multipart body: ${err.message}`)));
    parser.on('close', () => resolve());
    req.pipe(parser);
  });
  await Promise.all(saving);
  return { fields, files };
}

function jsonField(fields: Record<string, string>, name: string): unknown {
  const raw = fields[name];
  if (raw === undefined) return undefined;
  try {
    return JSON.parse(raw);
  } catch {
    throw badRequest(`form field ${name} must be JSON`);
  }
}

export function jobRoutes(deps: JobRouteDeps): Router {
  const router = Router();
  const { repo, workspace } = deps;

  const toNew = (j: ReturnType<typeof newJobSchema.parse>): NewJob => ({
    ...j,
    created_by: j.created_by ?? null,
  });

  router.post('/jobs', async (req: Request, res: Response) => {
    if (req.is('multipart/form-data')) {
      const jobId = crypto.randomUUID();
      try {
        const { fields, files } = await receiveMultipartJob(req, workspace, jobId, deps.maxFileBytes);
        const input = parseInput(
          newJobSchema,
          {
            task_type: fields.task_type,
            params: jsonField(fields, 'params'),
            priority: jsonField(fields, 'priority'),
            max_retries: jsonField(fields, 'max_retries'),
            created_by: fields.created_by,
            run_at: fields.run_at,
          },
          'form fields',
        );
        const [job] = await repo.add([{ ...toNew(input), job_id: jobId }]);
        res.status(201).json({ ...job, input_files: files });
      } catch (err) {
        await workspace.remove(jobId);
        throw err;
      }
      return;
    }
    if (!req.is('application/json'))
      throw unsupportedMediaType('send JSON, or multipart/form-data with input files');
    const input = parseInput(newJobSchema, req.body, 'job');
    const [job] = await repo.add([toNew(input)]);
    await workspace.create(job!.job_id);
    res.status(201).json(job);
  });

  // Bulk enqueue: one transaction for up to 1,000 jobs.
  router.post('/jobs/batch', async (req, res) => {
    const { jobs } = parseInput(batchSchema, req.body, 'batch');
    const added = await repo.add(jobs.map(toNew));
    res.status(201).json({ jobs: added.map((j) => j.job_id) });
  });

  router.get('/jobs', async (req, res) => {
    const q = parseInput(listQuery, req.query, 'query');
    const { items, total } = await repo.list({ ...q, status: q.status as Job['status'] | undefined });
    res.json({ items, total, limit: q.limit, offset: q.offset });
  });

  router.get('/jobs/stats', async (_req, res) => {
    res.json(await repo.stats());
  });

  // Remote workers: claim, heartbeat (progress), complete, fail, acknowledge a cancel.
  router.post('/jobs/claim', async (req, res) => {
    const c = parseInput(claimSchema, req.body, 'claim');
    const jobs = await repo.claimMany(c.worker_id, c.task_types, c.lease_ms ?? deps.leaseMs, c.max ?? 1);
    if (jobs.length === 0) return void res.status(204).end();
    // Without max the answer is the job itself (one claim, the simple protocol).
    res.json(c.max === undefined ? jobs[0] : { jobs });
  });

  router.get('/jobs/:id', async (req, res) => {
    res.json(await repo.mustGet(req.params.id));
  });

  router.post('/jobs/:id/heartbeat', async (req, res) => {
    const b = parseInput(heartbeatSchema, req.body, 'heartbeat');
    const job = await repo.heartbeat(
      req.params.id,
      { workerId: b.worker_id, attempt: b.attempt },
      deps.leaseMs,
      b.progress,
    );
    res.json({
      cancel_requested: job.cancel_requested,
      lease_expires_at: job.lease_expires_at,
      progress: job.progress,
    });
  });

  router.post('/jobs/:id/complete', async (req, res) => {
    const b = parseInput(completeSchema, req.body, 'completion');
    res.json(await repo.complete(req.params.id, { workerId: b.worker_id, attempt: b.attempt }, b.output));
  });

  router.post('/jobs/:id/fail', async (req, res) => {
    const b = parseInput(failSchema, req.body, 'failure');
    res.json(await repo.fail(req.params.id, { workerId: b.worker_id, attempt: b.attempt }, b.error));
  });

  router.post('/jobs/:id/cancelled', async (req, res) => {
    const b = parseInput(leaseSchema.strict(), req.body, 'body');
    res.json(await repo.acknowledgeCancel(req.params.id, { workerId: b.worker_id, attempt: b.attempt }));
  });

  router.post('/jobs/:id/cancel', async (req, res) => {
    res.json(await repo.cancel(req.params.id));
  });

  router.delete('/jobs/:id', async (req, res) => {
    const job = await repo.mustGet(req.params.id);
    if (job.status === 'processing') throw conflict(`job ${job.job_id} is running; cancel it first`);
    await repo.remove(job.job_id);
    await workspace.remove(job.job_id);
    res.status(204).end();
  });

  router.get('/jobs/:id/files', async (req, res) => {
    const job = await repo.mustGet(req.params.id);
    res.json({ job_id: job.job_id, files: await workspace.list(job.job_id) });
  });

  router.get('/jobs/:id/files/*file', async (req, res) => {
    const job = await repo.mustGet(req.params.id);
    const rel = (req.params as unknown as { file: string[] }).file.join('/');
    const { stream, size } = await workspace.open(job.job_id, rel);
    res.setHeader('Content-Length', String(size));
    res.attachment(path.basename(rel));
    stream.pipe(res);
  });

  // Remote workers store outputs here; only under output/.
  router.put('/jobs/:id/files/*file', async (req, res) => {
    const job = await repo.mustGet(req.params.id);
    const rel = (req.params as unknown as { file: string[] }).file.join('/');
    if (!rel.startsWith('output/')) throw badRequest('workers may only write under output/');
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > deps.maxFileBytes) throw badRequest(`file is larger than ${deps.maxFileBytes} bytes`);
    const saved = await workspace.save(job.job_id, rel, req).catch(async (err) => {
      await rm(workspace.resolve(job.job_id, rel), { force: true });
      throw err;
    });
    res.status(201).json(saved);
  });

  return router;
}
