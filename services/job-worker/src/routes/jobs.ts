import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import {
  badRequest,
  CALLER_KEY_ID_HEADER,
  CALLER_SCOPES_HEADER,
  conflict,
  forbidden,
  IdempotencyKeys,
  idempotencyOf,
  idempotentResultGone,
  jsonBody,
  notFound,
  parseInput,
  parseJsonStrict,
  payloadTooLarge,
  receiveMultipart,
  serviceRouter,
  unsupportedMediaType,
} from '@qlab/kit';
import type { Request, Response, Router } from 'express';
import type { Job, NewJob } from '../domain/job';
import type { JobRepository } from '../storage/job-repository';
import type { JobFiles, SavedJobFile } from '../storage/workspace';
import { builtInTasks, taskTypeCatalogue } from '../worker/handlers';
import {
  batchSchema,
  claimSchema,
  completedSeriesQuery,
  completeSchema,
  failSchema,
  heartbeatSchema,
  leaseSchema,
  listQuery,
  newJobSchema,
  patchSchema,
  retryFailedSchema,
} from './schemas';

export interface JobRouteDeps {
  repo: JobRepository;
  workspace: JobFiles;
  leaseMs: number;
  /** Largest input file for multipart job creation and output uploads. */
  maxFileBytes: number;
}

/** Longest input file name in bytes (file systems allow 255; leave room for the temp suffix). */
const MAX_NAME_BYTES = 200;

/** The name an input file is stored under: its base name only, checked, never a path. */
function inputName(filename: string | undefined, index: number): string {
  // Fold look-alikes first (a full-width ．．／ is ../ after NFKC), then keep the base name.
  const base = path.basename((filename ?? '').normalize('NFKC').replace(/\\/g, '/'));
  if (base === '' || base === '.' || base === '..') return `file-${index}`;
  if (/[\u0000-\u001f\u007f]/.test(base))
    throw badRequest('input file names may not contain control characters');
  if (Buffer.byteLength(base) > MAX_NAME_BYTES)
    throw badRequest(`input file name is longer than ${MAX_NAME_BYTES} bytes`);
  return base;
}

/** Multipart job creation: fields (task_type, params as JSON, …) and files that become input/<name>. */
async function receiveMultipartJob(
  req: Request,
  workspace: JobFiles,
  jobId: string,
  maxFileBytes: number,
): Promise<{ fields: Record<string, string>; files: SavedJobFile[] }> {
  await workspace.create(jobId);
  const names = new Set<string>();
  return receiveMultipart(
    req,
    { files: 100, fields: 50, fileBytes: maxFileBytes, fieldBytes: 1024 * 1024 },
    async ({ filename, stream }) => {
      // A client cannot choose where in the workspace files go, nor overwrite one with another.
      const name = inputName(filename, names.size);
      if (names.has(name)) throw badRequest(`two input files are named ${name}`);
      names.add(name);
      // Judged on the resolved path too, as outputs are: the file must land in input/.
      workspace.resolveUnder(jobId, 'input', `input/${name}`);
      return workspace.save(jobId, `input/${name}`, stream);
    },
  );
}

/**
 * A JSON route's body must be JSON (415 otherwise), and an output may not carry a `__proto__`
 * member: the schema would drop it silently, so the job would keep less than it was sent.
 */
function requireJson(req: Request): void {
  const hasBody =
    Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;
  if (hasBody && !req.is(['application/json', 'application/*+json']))
    throw unsupportedMediaType('send the body as application/json');
  if (hasProtoKey((req.body as { output?: unknown } | undefined)?.output))
    throw badRequest('output may not have a member named __proto__');
}

function hasProtoKey(value: unknown, depth = 0): boolean {
  if (value === null || typeof value !== 'object' || depth > 64) return false;
  if (Object.hasOwn(value, '__proto__')) return true;
  return Object.values(value).some((v) => hasProtoKey(v, depth + 1));
}

/** The multipart fields of POST /jobs: the JSON body's members (job_id is refused with files). */
const FORM_FIELDS = new Set([
  'job_id',
  'started_at',
  'completed_at',
  'retry_count',
  'created_at',
  'task_type',
  'params',
  'priority',
  'max_retries',
  'created_by',
  'run_at',
  'status',
  'progress',
  'output',
  'error_message',
]);

function jsonField(fields: Record<string, string>, name: string): unknown {
  const raw = fields[name];
  return raw === undefined ? undefined : parseJsonStrict(raw, `form field ${name}`);
}

export function jobRoutes(deps: JobRouteDeps): Router {
  const router = serviceRouter();
  const { repo, workspace } = deps;
  const keys = new IdempotencyKeys(repo.knex);
  // JSON only where a route takes JSON: file uploads must reach their route untouched.
  const json = jsonBody();

  const toNew = ({
    status: _status,
    progress: _progress,
    output: _output,
    error_message: _error,
    started_at: _started,
    completed_at: _completed,
    retry_count: _retries,
    created_at: _created,
    ...j
  }: ReturnType<typeof newJobSchema.parse>): NewJob => {
    // A built-in task's declared params are checked here, not when a worker first runs it.
    // Own keys only: a task type named `constructor` or `__proto__` is a custom type, not a spec.
    const spec = Object.hasOwn(builtInTasks, j.task_type) ? builtInTasks[j.task_type] : undefined;
    if (spec) parseInput(spec.params, j.params, `params of ${j.task_type}`);
    return { ...j, created_by: j.created_by ?? null };
  };

  /**
   * Adds one job, once per Idempotency-Key (draft-ietf-httpapi-idempotency-key-header): a retry
   * of a create whose answer was lost gets the first job (Idempotent-Replayed: true), not a second.
   * `asked` is what the request asked for (the fingerprint). Returns the job and whether it is new.
   */
  const addOnce = async (req: Request, job: NewJob, asked: unknown) => {
    const idem = idempotencyOf(req, asked);
    // The key names the job by id and creation time: a job deleted and its id reused since is
    // another job, and a replay must not answer it.
    const replay = async () => {
      const first = idem && (await keys.first(idem, 'job'));
      if (!first) return undefined;
      const [createdAt, ...id] = first.split(':');
      const found = await repo.get(id.join(':'));
      if (!found || String(found.created_at) !== createdAt) throw idempotentResultGone();
      return found;
    };
    const earlier = await replay();
    if (earlier) return { job: earlier, created: false };
    try {
      const [added] = await repo.add(
        [job],
        idem && ((trx, [j]) => keys.record(trx, idem, 'job', `${j!.created_at}:${j!.job_id}`)),
      );
      return { job: added!, created: true };
    } catch (err) {
      // Two requests with one key at once: the second's insert failed; answer the first's job
      // (or the first's 422 or 409, when this one asked for something else).
      const first = idem && (await replay());
      if (first) return { job: first, created: false };
      throw err;
    }
  };
  const answerCreated = (res: Response, r: { created: boolean }, body: object) => {
    if (!r.created) res.setHeader('Idempotent-Replayed', 'true');
    res.status(201).json(body);
  };

  router.post('/jobs', json, async (req: Request, res: Response) => {
    if (req.is('multipart/form-data')) {
      // A bad Idempotency-Key is refused before the files are stored.
      idempotencyOf(req, null);
      const jobId = crypto.randomUUID();
      let created = false;
      try {
        const { fields, files } = await receiveMultipartJob(req, workspace, jobId, deps.maxFileBytes);
        // Every field is the JSON body's, as text; none is dropped unread.
        const unknown = Object.keys(fields).filter((f) => !FORM_FIELDS.has(f));
        if (fields.job_id !== undefined)
          throw badRequest(
            'job_id is not taken with files (they are stored as they arrive): send JSON, or use the id in the answer',
          );
        if (unknown.length > 0) throw badRequest(`unknown form field(s): ${unknown.slice(0, 10).join(', ')}`);
        const input = parseInput(
          newJobSchema,
          {
            task_type: fields.task_type,
            params: jsonField(fields, 'params'),
            priority: jsonField(fields, 'priority'),
            max_retries: jsonField(fields, 'max_retries'),
            created_by: fields.created_by,
            run_at: fields.run_at,
            status: fields.status,
            progress: jsonField(fields, 'progress'),
            output: jsonField(fields, 'output'),
            error_message: jsonField(fields, 'error_message'),
            started_at: jsonField(fields, 'started_at'),
            completed_at: jsonField(fields, 'completed_at'),
            retry_count: jsonField(fields, 'retry_count'),
            created_at: fields.created_at === 'null' ? null : fields.created_at,
          },
          'form fields',
        );
        // The fingerprint: the fields and the files, not the id this request drew.
        // Names are unique, so the sorted list is the inputs whatever order they came in.
        const inputs = files.map((f) => [f.relative_path, f.sha256]).sort(([a], [b]) => (a! < b! ? -1 : 1));
        const asked = [toNew(input), inputs];
        const r = await addOnce(req, { ...toNew(input), job_id: jobId }, asked);
        created = r.created;
        // A replay answers the first job, whose input files are these (the fingerprint has
        // them); this request's copy goes first.
        if (!created) await workspace.remove(jobId);
        answerCreated(res, r, { ...r.job, input_files: files });
      } finally {
        if (!created) await workspace.remove(jobId);
      }
      return;
    }
    if (!req.is('application/json'))
      throw unsupportedMediaType('send JSON, or multipart/form-data with input files');
    const input = parseInput(newJobSchema, req.body, 'job');
    const r = await addOnce(req, toNew(input), toNew(input));
    if (r.created) {
      // A job id given again after its job was deleted starts with no files, not the old ones
      // (a blob store keeps what an upload racing the delete stored).
      await workspace.remove(r.job.job_id);
      await workspace.create(r.job.job_id);
    }
    answerCreated(res, r, r.job);
  });

  // Bulk enqueue: one transaction for up to 1,000 jobs.
  router.post('/jobs/batch', json, async (req, res) => {
    // Said rather than ignored: a retried batch with a key would otherwise queue twice.
    if (req.get('idempotency-key') !== undefined)
      throw badRequest('Idempotency-Key is not taken on /jobs/batch: send job_id per job, or POST /jobs');
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

  // Completions over time, for charts: `minutes` back from now in buckets of `bucket_s`.
  router.get('/jobs/stats/completed', async (req, res) => {
    const q = parseInput(completedSeriesQuery, req.query, 'query');
    if ((q.minutes * 60) / q.bucket_s > 10_000) throw badRequest('at most 10,000 buckets: widen bucket_s');
    res.json({
      bucket_s: q.bucket_s,
      series: await repo.completedSeries(q.minutes * 60_000, q.bucket_s * 1000),
    });
  });

  router.get('/jobs/task-types', (_req, res) => {
    res.json({ items: taskTypeCatalogue() });
  });

  // Remote workers: claim, heartbeat (progress), complete, fail, acknowledge a cancel.
  router.post('/jobs/claim', json, async (req, res) => {
    const c = parseInput(claimSchema, req.body, 'claim');
    const jobs = await repo.claimMany(c.worker_id, c.task_types, c.lease_ms ?? deps.leaseMs, c.max ?? 1);
    if (jobs.length === 0) return void res.status(204).end();
    // Without max the answer is the job itself (one claim, the simple protocol).
    res.json(c.max === undefined ? jobs[0] : { jobs });
  });

  router.get('/jobs/:id', async (req, res) => {
    res.json(await repo.mustGet(req.params.id));
  });

  router.post('/jobs/:id/heartbeat', json, async (req, res) => {
    const b = parseInput(heartbeatSchema, req.body, 'heartbeat');
    const job = await repo.heartbeat(
      String(req.params.id),
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

  router.post('/jobs/:id/complete', json, async (req, res) => {
    requireJson(req);
    const b = parseInput(completeSchema, req.body, 'completion');
    res.json(
      await repo.complete(String(req.params.id), { workerId: b.worker_id, attempt: b.attempt }, b.output),
    );
  });

  router.post('/jobs/:id/fail', json, async (req, res) => {
    const b = parseInput(failSchema, req.body, 'failure');
    res.json(await repo.fail(String(req.params.id), { workerId: b.worker_id, attempt: b.attempt }, b.error));
  });

  router.post('/jobs/:id/cancelled', json, async (req, res) => {
    const b = parseInput(leaseSchema.strict(), req.body, 'body');
    res.json(
      await repo.acknowledgeCancel(String(req.params.id), { workerId: b.worker_id, attempt: b.attempt }),
    );
  });

  // The seed's update_job: the lease holder reports progress/output; without a lease only an
  // admin may (the service's own token called directly, or a gateway key with admin scope).
  router.patch('/jobs/:id', json, async (req, res) => {
    requireJson(req);
    const b = parseInput(patchSchema, req.body, 'update');
    const lease = b.worker_id !== undefined ? { workerId: b.worker_id, attempt: b.attempt! } : undefined;
    if (!lease) {
      const viaGateway = req.headers[CALLER_KEY_ID_HEADER] !== undefined;
      const scopes = String(req.headers[CALLER_SCOPES_HEADER] ?? '').split(',');
      if (viaGateway && !scopes.includes('admin'))
        throw forbidden('updating a job without its lease (worker_id and attempt) needs an admin key');
    }
    res.json(await repo.update(String(req.params.id), { progress: b.progress, output: b.output }, lease));
  });

  // The console's "retry" and "retry all failed" (Bull Board's): a fresh run, error history kept.
  router.post('/jobs/retry-failed', json, async (req, res) => {
    const b = parseInput(retryFailedSchema, req.body ?? {}, 'body');
    const ids = await repo.retryFailed(b.task_type);
    res.json({ retried: ids.length, job_ids: ids });
  });

  router.post('/jobs/:id/retry', async (req, res) => {
    res.json(await repo.retry(req.params.id));
  });

  router.post('/jobs/:id/cancel', async (req, res) => {
    res.json(await repo.cancel(req.params.id));
  });

  router.delete('/jobs/:id', async (req, res) => {
    const job = await repo.mustGet(req.params.id);
    if (job.status === 'processing') throw conflict(`job ${job.job_id} is running; cancel it first`);
    // The files first: if the store fails, the job is still there for the DELETE to be retried.
    await workspace.remove(job.job_id);
    await repo.remove(job.job_id);
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
    // pipeline, not pipe: a read error (the file removed mid-download) must not go unhandled;
    // the response is cut off, since its headers are already out.
    await pipeline(stream, res).catch(() => res.destroy());
  });

  // Remote workers store outputs here; only under output/ (judged on the resolved path, so
  // output/../input/x is refused). The body is the file, whatever its Content-Type says: no
  // body parser runs on this route.
  router.put('/jobs/:id/files/*file', async (req, res) => {
    const job = await repo.mustGet(req.params.id);
    const rel = (req.params as unknown as { file: string[] }).file.join('/');
    workspace.resolveUnder(job.job_id, 'output', rel);
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > deps.maxFileBytes) throw payloadTooLarge(`file is larger than ${deps.maxFileBytes} bytes`);
    const saved = await workspace.save(job.job_id, rel, req, deps.maxFileBytes);
    // Deleted while its output arrived: the file would outlive the job.
    if (!(await repo.get(job.job_id))) {
      await workspace.remove(job.job_id);
      throw notFound(`job ${job.job_id} was deleted`);
    }
    res.status(201).json(saved);
  });

  return router;
}
