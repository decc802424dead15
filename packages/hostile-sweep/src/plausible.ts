import type { RequestSpec } from './cases';
import {
  absentPathValue,
  FIXTURE_MODEL,
  type Fixtures,
  NOOP_TASK,
  plausiblePathValue,
  SUCCESS_STATUS,
} from './fixtures';
import { MULTIPART_TYPE, multipartBody, type Part } from './multipart';
import type { Operation } from './openapi';
import { type AnalyticsDomain, KEYS, type KeyName, serviceToken } from './stack';
import { tinyZip } from './zip';

export type JsonType = 'string' | 'number' | 'integer' | 'boolean' | 'object' | 'array';

/** What the body of a valid request looks like, so that mutations know what they break. */
export type BodyModel =
  | { kind: 'none' }
  | {
      kind: 'json';
      value: Record<string, unknown>;
      /** Fields the service really requires (not always what the document says). */
      required: string[];
      types: Record<string, JsonType>;
      /** Fields the service coerces from any type (z.coerce): a wrong type may be valid. */
      coerced: string[];
      /** The route takes no body at all as valid (search: every filter is optional). */
      optional: boolean;
    }
  | { kind: 'multipart'; parts: Part[]; fileField: string; required: string[] }
  /** Raw bytes: an IndexedCP chunk, a tus PATCH, a job output file. */
  | { kind: 'raw'; type: string }
  | { kind: 'ndjson' };

export interface Plausible {
  spec: RequestSpec;
  body: BodyModel;
}

/** Who sends a request: the service's own token, nobody, a wrong secret, or a gateway key. */
export type Caller = 'service' | 'none' | 'wrong' | KeyName;

export const WRONG_KEY = 'hostile-unknown-key-0123456789';
export const WRONG_TOKEN = 'hostile-wrong-token-0123456789';

export function authHeaders(op: Operation, caller: Caller): [string, string][] {
  if (caller === 'none') return [];
  if (op.via === 'gateway') {
    if (caller === 'wrong') return [['X-API-Key', WRONG_KEY]];
    return [['X-API-Key', KEYS[caller === 'service' ? 'admin' : caller]]];
  }
  if (caller === 'wrong') return [['Authorization', `Bearer ${WRONG_TOKEN}`]];
  const token = serviceToken(op.service);
  return token ? [['Authorization', `Bearer ${token}`]] : [];
}

function typesOf(value: Record<string, unknown>, integers: string[]): Record<string, JsonType> {
  const out: Record<string, JsonType> = {};
  for (const [k, v] of Object.entries(value)) {
    if (Array.isArray(v)) out[k] = 'array';
    else if (typeof v === 'number') out[k] = integers.includes(k) ? 'integer' : 'number';
    else out[k] = typeof v as JsonType;
  }
  return out;
}

function jsonBody(
  value: Record<string, unknown>,
  required: string[],
  integers: string[] = [],
  more: { coerced?: string[]; optional?: boolean } = {},
): BodyModel {
  return {
    kind: 'json',
    value,
    required,
    types: typesOf(value, integers),
    coerced: more.coerced ?? [],
    optional: more.optional ?? false,
  };
}

const text = (name: string, value: string): Part => ({ name, data: Buffer.from(value) });
const archivePart = (): Part => ({
  name: 'archive',
  filename: 'bundle.zip',
  contentType: 'application/zip',
  data: tinyZip(),
});

function analyticsRecord(d: AnalyticsDomain): Record<string, unknown> {
  return {
    model: FIXTURE_MODEL,
    hardware: 'cpu',
    status: SUCCESS_STATUS[d],
    duration_ms: 1.5,
    tags: ['hostile'],
  };
}

let serial = 0;

/** The body (and its headers) of a valid request to one service route. */
function plausibleBody(
  op: Operation,
  fx: Fixtures,
): { body: BodyModel; headers: [string, string][]; query: string[] } {
  const t = op.serviceTemplate;
  const route = `${op.method} ${t.replace(/^\/api\/(test|generator|benchmark)\/db/, '/api/{d}/db')}`;
  const d = (/^analytics-(\w+)$/.exec(op.service)?.[1] ?? 'test') as AnalyticsDomain;
  const tus: [string, string][] = [['Tus-Resumable', '1.0.0']];
  const none = (headers: [string, string][] = [], query: string[] = []) => ({
    body: { kind: 'none' } as BodyModel,
    headers,
    query,
  });
  const n = ++serial;
  switch (route) {
    case 'POST /upload':
      if (op.service === 'chunked-upload') {
        return {
          body: { kind: 'raw', type: 'application/octet-stream' },
          headers: [
            ['X-Chunk-Index', '0'],
            ['X-Chunk-Total', '1'],
            ['X-File-Name', `hostile-${n}.txt`],
          ],
          query: [],
        };
      }
      return multipart(
        [text('hashID', `hostile-hash-${n}`), text('notes', 'hostile'), archivePart()],
        ['hashID'],
      );
    case 'POST /calibrations/upload':
      return multipart(
        [text('hashID', `hostile-hash-${n}`), text('notes', 'hostile'), archivePart()],
        ['hashID'],
      );
    case 'POST /results/upload':
      return multipart(
        [
          text('hashID', `hostile-hash-${n}`),
          text('name', 'hostile-result'),
          text('notes', 'hostile'),
          archivePart(),
        ],
        ['hashID', 'name'],
      );
    case 'POST /calibrations/download':
      return { body: jsonBody({ hashID: fx.hashID }, ['hashID']), headers: [], query: [] };
    case 'POST /results/download':
      return {
        body: jsonBody({ hashID: fx.hashID, name: fx.resultName }, ['hashID', 'name']),
        headers: [],
        query: [],
      };
    case 'GET /calibrations/archive':
      return none([], [`hashID=${fx.hashID}`]);
    case 'GET /results/archive':
      return none([], [`hashID=${fx.hashID}`, `name=${fx.resultName}`]);
    case 'OPTIONS /files':
    case 'HEAD /files/{id}':
    case 'DELETE /files/{id}':
      return none(tus);
    case 'POST /files':
      return none([
        ...tus,
        ['Upload-Length', '5'],
        ['Upload-Metadata', `filename ${Buffer.from(`hostile-${n}.txt`).toString('base64')}`],
      ]);
    case 'PATCH /files/{id}':
      return {
        body: { kind: 'raw', type: 'application/offset+octet-stream' },
        headers: [...tus, ['Upload-Offset', '0']],
        query: [],
      };
    case 'DELETE /sessions':
      // Only sessions idle for a day: none, so a valid call does not end the fixtures.
      return none([], ['idle_ms=86400000']);
    case 'POST /jobs':
      return {
        body: jsonBody(
          { task_type: NOOP_TASK, params: { n }, priority: 1, max_retries: 0, created_by: 'hostile' },
          ['task_type'],
          ['priority', 'max_retries'],
        ),
        headers: [],
        query: [],
      };
    case 'POST /jobs/batch':
      return { body: jsonBody({ jobs: [{ task_type: NOOP_TASK }] }, ['jobs']), headers: [], query: [] };
    case 'POST /jobs/claim':
      return {
        body: jsonBody({ worker_id: 'hostile-worker', task_types: ['hostile.unclaimable'] }, [
          'worker_id',
          'task_types',
        ]),
        headers: [],
        query: [],
      };
    case 'POST /jobs/{id}/heartbeat':
      return {
        body: jsonBody(
          { worker_id: 'hostile-worker', attempt: 1, progress: 10 },
          ['worker_id', 'attempt'],
          ['attempt'],
        ),
        headers: [],
        query: [],
      };
    case 'POST /jobs/{id}/complete':
      return {
        body: jsonBody(
          { worker_id: 'hostile-worker', attempt: 1, output: { ok: true } },
          ['worker_id', 'attempt'],
          ['attempt'],
        ),
        headers: [],
        query: [],
      };
    case 'POST /jobs/{id}/fail':
      return {
        body: jsonBody(
          { worker_id: 'hostile-worker', attempt: 1, error: 'hostile failure' },
          ['worker_id', 'attempt', 'error'],
          ['attempt'],
        ),
        headers: [],
        query: [],
      };
    case 'POST /jobs/{id}/cancelled':
      return {
        body: jsonBody({ worker_id: 'hostile-worker', attempt: 1 }, ['worker_id', 'attempt'], ['attempt']),
        headers: [],
        query: [],
      };
    case 'PUT /jobs/{id}/files/{path}':
      return { body: { kind: 'raw', type: 'application/octet-stream' }, headers: [], query: [] };
    case 'POST /api/{d}/db/runs':
    case 'POST /api/{d}/db/tasks':
      return { body: jsonBody(analyticsRecord(d), ['model', 'status']), headers: [], query: [] };
    case 'POST /api/{d}/db/runs/bulk':
    case 'POST /api/{d}/db/tasks/bulk':
      return { body: { kind: 'ndjson' }, headers: [], query: [] };
    case 'POST /api/{d}/db/batches':
      return {
        body: jsonBody({ name: 'hostile', status: 'running', expected_count: 1 }, [], ['expected_count']),
        headers: [],
        query: [],
      };
    case 'PATCH /api/{d}/db/batch/{id}':
      return { body: jsonBody({ description: 'hostile' }, []), headers: [], query: [] };
    case 'POST /api/{d}/db/search':
      return {
        body: jsonBody({ model: FIXTURE_MODEL, limit: 5 }, [], ['limit'], {
          coerced: ['limit'],
          optional: true,
        }),
        headers: [],
        query: [],
      };
    case 'POST /api/{d}/db/export':
      return none([], ['format=csv']);
    case 'POST /api/keys':
      return {
        body: jsonBody({ name: `hostile-key-${n}`, scopes: ['read'] }, ['name']),
        headers: [],
        query: [],
      };
    case 'POST /api/db/search':
      return none([], ['query=hostile', 'limit=5']);
    default:
      return none();
  }
}

function multipart(parts: Part[], requiredFields: string[]) {
  return {
    body: {
      kind: 'multipart',
      parts,
      fileField: 'archive',
      required: [...requiredFields, 'archive'],
    } as BodyModel,
    headers: [] as [string, string][],
    query: [] as string[],
  };
}

/** Serialises a body model into bytes and a Content-Type. */
export function bodyBytes(
  body: BodyModel,
  d: AnalyticsDomain = 'test',
): { body?: Buffer; contentType?: string } {
  switch (body.kind) {
    case 'none':
      return {};
    case 'json':
      return { body: Buffer.from(JSON.stringify(body.value)), contentType: 'application/json' };
    case 'multipart':
      return { body: multipartBody(body.parts), contentType: MULTIPART_TYPE };
    case 'raw':
      return { body: Buffer.from('hello'), contentType: body.type };
    case 'ndjson':
      return {
        body: Buffer.from(`${JSON.stringify(analyticsRecord(d))}\n`),
        contentType: 'application/x-ndjson',
      };
  }
}

export function domainOf(op: Operation): AnalyticsDomain {
  return (/^analytics-(\w+)$/.exec(op.service)?.[1] ?? 'test') as AnalyticsDomain;
}

/** Fills `{name}` placeholders; `absent` names nothing that exists (for destructive calls). */
export function fillPath(
  op: Operation,
  fx: Fixtures,
  values: Record<string, string> = {},
  absent = false,
): string {
  return op.template.replace(/\{([^}]+)\}/g, (_m, name: string) => {
    if (values[name] !== undefined) return values[name]!;
    const v = absent ? absentPathValue(op, name) : plausiblePathValue(op, name, fx);
    // `path` of job files is a path: keep its slashes.
    return name === 'path' ? v.split('/').map(encodeURIComponent).join('/') : encodeURIComponent(v);
  });
}

/** A valid request to `op` by `caller`, with plausible ids and a body the service takes. */
export function plausibleRequest(
  op: Operation,
  fx: Fixtures,
  caller: Caller = 'service',
  options: { absent?: boolean } = {},
): Plausible {
  const { body, headers, query } = plausibleBody(op, fx);
  const bytes = bodyBytes(body, domainOf(op));
  return {
    body,
    spec: {
      method: op.method,
      path: fillPath(op, fx, {}, options.absent),
      query,
      headers: [...authHeaders(op, caller), ...headers],
      body: bytes.body,
      contentType: bytes.contentType,
    },
  };
}
