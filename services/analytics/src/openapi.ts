import { type OpenApiDocument, problemResponse } from '@qlab/kit';
import { BATCH_STATUSES, batchColumns, type Column, type DomainSpec, recordColumns } from './domain/domains';
import { MAX_PAGE } from './domain/filters';

const ok = (description: string, type = 'application/json') => ({ description, content: { [type]: {} } });
const q = (name: string, description: string) => ({
  name,
  in: 'query',
  schema: { type: 'string' },
  description,
});
const path = (name: string) => ({ name, in: 'path', required: true, schema: { type: 'string' } });

const JSON_TYPES: Record<Column['type'], object> = {
  VARCHAR: { type: 'string' },
  INTEGER: { type: 'integer' },
  BIGINT: { type: 'integer' },
  DOUBLE: { type: 'number' },
  BOOLEAN: { type: 'boolean' },
  TIMESTAMPTZ: { type: 'string', format: 'date-time' },
};

function objectSchema(columns: Column[]) {
  return {
    type: 'object',
    additionalProperties: false,
    required: columns.filter((c) => c.required).map((c) => c.name),
    properties: Object.fromEntries(
      columns.map((c) => [c.name, { ...JSON_TYPES[c.type], description: c.doc }]),
    ),
  };
}

/** The domain's OpenAPI document, generated from the same specs as its tables. */
export function buildOpenApi(spec: DomainSpec): OpenApiDocument {
  const base = `/api/${spec.name}/db`;
  const record = objectSchema(recordColumns(spec));
  (record.properties as Record<string, unknown>).tags = {
    type: 'array',
    items: { type: 'string' },
    maxItems: 64,
  };
  for (const child of spec.children) {
    const s = objectSchema(child.columns);
    (record.properties as Record<string, unknown>)[child.key] = child.single
      ? s
      : { type: 'array', items: s };
  }
  const filters = [
    q('model', 'exact model name'),
    q('hardware', 'exact hardware name'),
    q('status', spec.statuses.join(' | ')),
    q('batch_id', 'records of one batch'),
    q('tag', 'records with this tag'),
    q(
      'query',
      'free text: a whole id or batch id, or part of a name, message or tag, in any case (`%` and `_` are plain characters)',
    ),
    q('since', 'ISO 8601: started (or created) at or after'),
    q('until', 'ISO 8601: started (or created) before'),
  ];
  const paging = [q('limit', `page size, 1..${MAX_PAGE}, default 50`), q('offset', 'default 0')];
  const tags = [spec.name];
  return {
    openapi: '3.1.0',
    info: {
      title: `qlab analytics: ${spec.name}`,
      version: '0.1.0',
      description: `The ${spec.name} domain (${spec.table} and its child tables) in its own DuckDB file. Events on qlab/analytics-${spec.name}/<type>.`,
    },
    security: [{ bearer: [] }],
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: { Record: record, Batch: objectSchema(batchColumns) },
    },
    paths: {
      [`${base}/${spec.records}`]: {
        get: {
          tags,
          summary: `List ${spec.records}, newest first`,
          parameters: [
            ...filters,
            ...paging,
            q('sort', 'any column, default created_at'),
            q('order', 'asc | desc'),
          ],
          responses: {
            200: ok(`{${spec.records}, total, limit, offset}`),
            400: problemResponse('bad filter'),
          },
        },
        post: {
          tags,
          summary: `Ingest one ${spec.record} or an array of up to 10,000 (all or nothing)`,
          requestBody: {
            content: {
              'application/json': {
                schema: {
                  oneOf: [
                    { $ref: '#/components/schemas/Record' },
                    { type: 'array', items: { $ref: '#/components/schemas/Record' } },
                  ],
                },
              },
            },
          },
          responses: {
            201: ok('{accepted, rejected, errors, ids}'),
            400: problemResponse('invalid record or unknown field'),
            409: problemResponse(`${spec.idColumn} already exists`),
          },
        },
      },
      [`${base}/${spec.records}/bulk`]: {
        post: {
          tags,
          summary: 'Bulk load an NDJSON or CSV stream, checked row by row',
          description:
            'Rows that fail a check are left out and reported with their line and reason; the rest load in one transaction. With strict=true any rejected row means nothing loads (422). CSV carries the scalar columns and tags separated by semicolons.',
          parameters: [
            q('strict', 'true: all or nothing'),
            q('max_errors', 'rejected rows to report, default 100'),
            q('format', 'ndjson | csv (else from Content-Type)'),
          ],
          requestBody: { content: { 'application/x-ndjson': {}, 'text/csv': {} } },
          responses: {
            201: ok('{accepted, rejected, errors: [{line, id, reason}], ids}'),
            400: problemResponse('unknown columns'),
            413: problemResponse('body too large'),
            415: problemResponse('not NDJSON or CSV'),
            422: problemResponse('strict load with rejected rows'),
          },
        },
      },
      [`${base}/${spec.record}/{id}`]: {
        get: {
          tags,
          summary: `One ${spec.record} with tags and child rows`,
          parameters: [path('id')],
          responses: { 200: ok(spec.record), 404: problemResponse('not found') },
        },
        delete: {
          tags,
          summary: `Delete a ${spec.record} and its child rows`,
          parameters: [path('id')],
          responses: { 200: ok('deleted'), 404: problemResponse('not found') },
        },
      },
      [`${base}/batches`]: {
        get: {
          tags,
          summary: 'Batches, newest first, with record counts',
          parameters: [q('status', BATCH_STATUSES.join(' | ')), ...paging],
          responses: { 200: ok('{batches, total}') },
        },
        post: {
          tags,
          summary: `Create or update a batch, optionally with its ${spec.records} (one transaction)`,
          requestBody: {
            content: { 'application/json': { schema: { $ref: '#/components/schemas/Batch' } } },
          },
          responses: { 201: ok('{batch_id, accepted, ids}'), 400: problemResponse('invalid batch') },
        },
      },
      [`${base}/batch/{id}`]: {
        get: {
          tags,
          summary: `A batch with its summary and ${spec.records}`,
          parameters: [path('id'), ...paging],
          responses: { 200: ok('batch'), 404: problemResponse('not found') },
        },
        patch: {
          tags,
          summary: 'Update a batch (status completed emits batch.completed)',
          parameters: [path('id')],
          responses: { 200: ok('batch'), 404: problemResponse('not found') },
        },
        delete: {
          tags,
          summary: `Delete a batch with its ${spec.records} and their child rows`,
          parameters: [path('id')],
          responses: { 200: ok('{batch_id, deleted}'), 404: problemResponse('not found') },
        },
      },
      [`${base}/models/stats`]: {
        get: {
          tags,
          summary: 'Per-model counts, success rate and metrics',
          parameters: filters,
          responses: { 200: ok('{models}') },
        },
      },
      [`${base}/hardware/stats`]: {
        get: {
          tags,
          summary: 'Per-hardware counts, success rate and metrics',
          parameters: filters,
          responses: { 200: ok('{hardware}') },
        },
      },
      [`${base}/models/{name}`]: {
        get: {
          tags,
          summary: 'One model: totals, success rate, per hardware, recent records',
          parameters: [path('name'), q('recent', 'recent records, default 10')],
          responses: { 200: ok('summary') },
        },
      },
      [`${base}/performance`]: {
        get: {
          tags,
          summary: `Performance report on ${spec.primaryMetric}: per model and hardware, and per day`,
          parameters: [...filters, q('days', 'daily window, default 30')],
          responses: { 200: ok('{by_model_hardware, daily}') },
        },
      },
      [`${base}/search`]: {
        post: {
          tags,
          summary: 'Search by model, tags, status and free text (JSON body or query)',
          parameters: [...filters, ...paging],
          responses: { 200: ok('{results, total}') },
        },
        get: {
          tags,
          summary: 'The same search from the query string',
          parameters: [...filters, ...paging],
          responses: { 200: ok('{results, total}') },
        },
      },
      [`${base}/export`]: {
        post: {
          tags,
          summary: 'Export as a stream: the whole database as JSON, or one table as JSON, CSV or Parquet',
          parameters: [
            q('format', 'json | csv | parquet'),
            q('table', 'one table; default: all (json) or the main table'),
            ...filters,
          ],
          responses: {
            200: ok('the export', 'application/octet-stream'),
            400: problemResponse('unknown table or format'),
          },
        },
      },
      [`${base}/export/lake`]: {
        post: {
          tags,
          summary:
            'Write the history to the blob store as Hive-partitioned Parquet by day (lake/<domain>/<table>/day=YYYY-MM-DD/), idempotently',
          parameters: [q('since', 'rewrite the days from this one on (YYYY-MM-DD, UTC); default every day')],
          responses: {
            200: ok('{location, since, tables: [{table, days, rows}], removed, duration_ms}'),
            400: problemResponse('since is not a day'),
          },
        },
      },
      [`${base}/stats`]: {
        get: { tags, summary: 'Totals for the gateway overview', responses: { 200: ok('stats') } },
      },
    },
  };
}
