import { MULTIPART_TYPE, multipartBody } from './multipart';
import type { Operation } from './openapi';
import {
  ANALYTICS_DOMAINS,
  type AnalyticsDomain,
  type HostileStack,
  KEYS,
  type ServiceName,
  serviceToken,
} from './stack';
import { tinyZip } from './zip';

/** Things the sweep creates first, so that path parameters can also be plausible ids. */
export interface Fixtures {
  hashID: string;
  resultName: string;
  calibrationId: string;
  resultId: string;
  jobId: string;
  jobFile: string;
  tusId: string;
  indexedcpId: string;
  analytics: Record<AnalyticsDomain, { recordId: string; batchId: string; model: string }>;
  keyId: string;
}

export const FIXTURE_MODEL = 'hostile-model';
/** A task type no built-in handler runs: the in-process pool must leave the sweep's jobs alone. */
export const NOOP_TASK = 'hostile.noop';
export const SUCCESS_STATUS: Record<AnalyticsDomain, string> = {
  test: 'passed',
  generator: 'completed',
  benchmark: 'completed',
};

async function call(
  stack: HostileStack,
  service: ServiceName,
  path: string,
  init: { method?: string; headers?: Record<string, string>; body?: Buffer | string } = {},
): Promise<Response> {
  const token = serviceToken(service);
  const headers = { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...init.headers };
  const res = await fetch(`${stack.get(service).url}${path}`, {
    method: init.method ?? 'GET',
    headers,
    body: init.body,
    signal: AbortSignal.timeout(10_000),
  });
  if (res.status >= 300)
    throw new Error(`fixture ${init.method ?? 'GET'} ${service}${path}: ${res.status} ${await res.text()}`);
  return res;
}

const json = (body: unknown) => ({
  method: 'POST',
  headers: { 'Content-Type': 'application/json' },
  body: JSON.stringify(body),
});

export async function createFixtures(stack: HostileStack): Promise<Fixtures> {
  const hashID = 'hostile-fixture-hash';
  const resultName = 'hostile-fixture-result';
  const archive = {
    name: 'archive',
    filename: 'fixture.zip',
    contentType: 'application/zip',
    data: tinyZip(),
  };
  const text = (name: string, value: string) => ({ name, data: Buffer.from(value) });
  const upload = async (path: string, fields: { name: string; data: Buffer }[]) => {
    const res = await call(stack, 'calibration-store', path, {
      method: 'POST',
      headers: { 'Content-Type': MULTIPART_TYPE },
      body: multipartBody([...fields, archive]),
    });
    return String(((await res.json()) as { id: number }).id);
  };
  const calibrationId = await upload('/calibrations/upload', [
    text('hashID', hashID),
    text('notes', 'fixture'),
  ]);
  const resultId = await upload('/results/upload', [
    text('hashID', hashID),
    text('name', resultName),
    text('notes', 'fixture'),
  ]);

  const jobRes = await call(stack, 'job-worker', '/jobs', {
    method: 'POST',
    headers: { 'Content-Type': MULTIPART_TYPE },
    body: multipartBody([
      text('task_type', NOOP_TASK),
      text('params', '{"fixture":true}'),
      { name: 'file', filename: 'fixture.txt', contentType: 'text/plain', data: Buffer.from('fixture') },
    ]),
  });
  const jobId = ((await jobRes.json()) as { job_id: string }).job_id;

  // Long enough that a sweep PATCH of a few bytes never completes it.
  const tusRes = await call(stack, 'chunked-upload', '/files', {
    method: 'POST',
    headers: { 'Tus-Resumable': '1.0.0', 'Upload-Length': '1000000' },
  });
  const tusId = (tusRes.headers.get('location') ?? '').split('/').pop()!;
  const icpRes = await call(stack, 'chunked-upload', '/upload', {
    method: 'POST',
    headers: {
      'X-Chunk-Index': '0',
      'X-Chunk-Total': '2',
      'X-File-Name': 'hostile-fixture.txt',
      'X-Upload-Id': 'hostile-fixture-upload',
      'Content-Type': 'application/octet-stream',
    },
    body: 'fixture',
  });
  const indexedcpId = ((await icpRes.json()) as { uploadId: string }).uploadId;

  const analytics = {} as Fixtures['analytics'];
  for (const d of ANALYTICS_DOMAINS) {
    const service = `analytics-${d}` as ServiceName;
    const records = d === 'generator' ? 'tasks' : 'runs';
    const idColumn = d === 'generator' ? 'task_id' : 'run_id';
    const batchId = `hostile-fixture-batch-${d}`;
    await call(stack, service, `/api/${d}/db/batches`, json({ batch_id: batchId, status: 'running' }));
    const recordId = `hostile-fixture-${d}`;
    await call(
      stack,
      service,
      `/api/${d}/db/${records}`,
      json({
        [idColumn]: recordId,
        batch_id: batchId,
        model: FIXTURE_MODEL,
        hardware: 'cpu',
        status: SUCCESS_STATUS[d],
        duration_ms: 12.5,
        tags: ['hostile'],
      }),
    );
    analytics[d] = { recordId, batchId, model: FIXTURE_MODEL };
  }

  const keyRes = await fetch(`${stack.get('gateway').url}/api/keys`, {
    method: 'POST',
    headers: { 'X-API-Key': KEYS.admin, 'Content-Type': 'application/json' },
    body: JSON.stringify({ name: 'hostile-fixture', scopes: ['read'] }),
  });
  if (keyRes.status !== 201) throw new Error(`fixture key: ${keyRes.status} ${await keyRes.text()}`);
  const keyId = ((await keyRes.json()) as { id: string }).id;

  return {
    hashID,
    resultName,
    calibrationId,
    resultId,
    jobId,
    jobFile: 'input/fixture.txt',
    tusId,
    indexedcpId,
    analytics,
    keyId,
  };
}

function domainOf(op: Operation): AnalyticsDomain | undefined {
  const m = /^analytics-(test|generator|benchmark)$/.exec(op.service);
  return m ? (m[1] as AnalyticsDomain) : undefined;
}

/** A value for a path parameter that names something that exists (or, for filters, is ordinary). */
export function plausiblePathValue(op: Operation, param: string, fx: Fixtures): string {
  const t = op.serviceTemplate;
  const d = domainOf(op);
  if (op.service === 'calibration-store') return t.startsWith('/results') ? fx.resultId : fx.calibrationId;
  if (op.service === 'chunked-upload') return t.startsWith('/uploads') ? fx.indexedcpId : fx.tusId;
  if (op.service === 'job-worker') {
    if (param === 'path') return op.method === 'PUT' ? 'output/hostile.txt' : fx.jobFile;
    return fx.jobId;
  }
  if (d) {
    if (param === 'name') return fx.analytics[d].model;
    return t.includes('/batch/') ? fx.analytics[d].batchId : fx.analytics[d].recordId;
  }
  if (op.service === 'quantum-tracker') {
    if (param === 'status') return 'queued';
    if (param === 'id') return 'hostile-job-1';
    return 'ibm_brisbane';
  }
  // The gateway's own routes: keys/{id}, db/model/{name}.
  if (param === 'id') return fx.keyId;
  return FIXTURE_MODEL;
}

/** Destructive operations get a well-formed id of nothing, so the matrix does not eat the fixtures. */
export function absentPathValue(op: Operation, param: string): string {
  if (op.service === 'calibration-store') return '999999';
  if (op.service === 'chunked-upload') return 'f'.repeat(32);
  if (op.service === 'job-worker') return param === 'path' ? 'output/absent.txt' : 'hostile-absent-job';
  if (op.service === 'gateway' && param === 'id') return '0123456789abcdef';
  return 'hostile-absent';
}
