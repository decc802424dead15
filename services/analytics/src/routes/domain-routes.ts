import {
  AppError,
  badRequest,
  jsonBody,
  notFound,
  parseInput,
  serviceRouter,
  unsupportedMediaType,
} from '@qlab/kit';
import type express from 'express';
import type { Request, Router } from 'express';
import { z } from 'zod';
import { filterSchema, pageSchema, sortSchema } from '../domain/filters';
import { BadCsv, type FileFormat, LoadRejected, type LoadResult, UnknownColumns } from '../domain/loading';
import type { DomainQueries } from '../storage/domain-queries';
import type { DomainWrites } from '../storage/domain-writes';
import { CONTENT_TYPES, domainTables, type Exporter } from '../storage/export';
import type { LakeExporter } from '../storage/lake-export';
import { receiveToFile } from './receive-file';
import {
  batchPatchSchema,
  batchSchema,
  bulkOptionsSchema,
  exportSchema,
  idParam,
  lakeSchema,
  MAX_JSON_RECORDS,
  recordSchema,
} from './schemas';

export interface DomainRouteDeps {
  queries: DomainQueries;
  writes: DomainWrites;
  exporter: Exporter;
  lake: LakeExporter;
  maxBulkBytes: number;
  loadTimeoutMs: number;
}

const NDJSON_TYPES = [
  'application/x-ndjson',
  'application/ndjson',
  'application/jsonl',
  'application/json-seq',
];

function bodyFormat(req: Request, given: FileFormat | undefined): FileFormat {
  if (given) return given;
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (NDJSON_TYPES.includes(type)) return 'ndjson';
  if (type === 'text/csv') return 'csv';
  throw unsupportedMediaType('send application/x-ndjson or text/csv (or say ?format=ndjson|csv)');
}

/** Turns a strict load's rejection or a bad file into the right problem. */
function loadError(err: unknown, idColumn: string): unknown {
  if (err instanceof UnknownColumns) return badRequest(err.message, { unknown_columns: err.columns });
  if (err instanceof BadCsv) return badRequest(err.message);
  if (err instanceof LoadRejected) {
    const r = err.result;
    const dup = r.errors.some((e) => e.reason === `${idColumn} already exists`);
    const extras = { accepted: 0, rejected: r.rejected, errors: r.errors };
    return dup
      ? new AppError(409, 'CONFLICT', r.errors.map((e) => e.reason).join('; '), extras)
      : new AppError(422, 'ROWS_REJECTED', `${r.rejected} rows were rejected; nothing was loaded`, extras);
  }
  return err;
}

const loaded = (r: LoadResult) => ({
  accepted: r.accepted,
  rejected: r.rejected,
  errors: r.errors,
  ids: r.ids,
});

/** The seed's per-domain API under /api/{domain}/db, plus ingest, search, export and stats. */
export function domainRoutes(deps: DomainRouteDeps): Router {
  const { queries, writes, exporter } = deps;
  const spec = queries.spec;
  const json = jsonBody('64mb');
  const router = serviceRouter();
  const base = `/api/${spec.name}/db`;
  const one = `${base}/${spec.record}`;
  const many = `${base}/${spec.records}`;
  const record = recordSchema(spec);
  const recordList = z.array(record).min(1).max(MAX_JSON_RECORDS);
  const sorting = sortSchema(spec);

  router.get(many, async (req, res) => {
    const q = req.query as Record<string, unknown>;
    const filters = parseInput(filterSchema.strip(), q, 'query');
    const page = parseInput(pageSchema, q, 'query');
    const sort = parseInput(sorting, q, 'query');
    res.json(await queries.list(filters, page, sort));
  });

  router.post(many, json, async (req, res) => {
    // Parsed by the branch that applies, so a bad field is named rather than "invalid union".
    const list = Array.isArray(req.body)
      ? parseInput(recordList, req.body, spec.records)
      : [parseInput(record, req.body, spec.record)];
    try {
      res.status(201).json(loaded(await writes.loadRecords(list)));
    } catch (err) {
      throw loadError(err, spec.idColumn);
    }
  });

  router.post(`${many}/bulk`, async (req, res) => {
    const options = parseInput(bulkOptionsSchema, req.query, 'query');
    const format = bodyFormat(req, options.format);
    const file = writes.tempFile(format);
    // NDJSON: a broken line is one rejected record; CSV: a broken line may hide a row boundary.
    const received = await receiveToFile(
      req,
      file,
      deps.maxBulkBytes,
      format === 'ndjson' ? 'blank' : 'refuse',
    );
    try {
      const result = await writes.loadFromFile(
        file,
        { format, strict: options.strict, maxReported: options.max_errors, received },
        deps.loadTimeoutMs,
      );
      res.status(result.accepted > 0 ? 201 : 200).json(loaded(result));
    } catch (err) {
      throw loadError(err, spec.idColumn);
    }
  });

  router.get(`${one}/:id`, async (req, res) => {
    const { id } = parseInput(idParam, req.params, 'path');
    const row = await queries.get(id);
    if (!row) throw notFound(`${spec.record} ${id} not found`);
    res.json(row);
  });

  router.delete(`${one}/:id`, async (req, res) => {
    const { id } = parseInput(idParam, req.params, 'path');
    await writes.deleteRecord(id);
    res.json({ deleted: id });
  });

  router.get(`${base}/batches`, async (req, res) => {
    const page = parseInput(pageSchema, req.query, 'query');
    const { status } = parseInput(z.object({ status: z.string().max(50).optional() }), req.query, 'query');
    res.json(await queries.batches(page, status));
  });

  router.post(`${base}/batches`, json, async (req, res) => {
    const body = parseInput(batchSchema.extend({ [spec.records]: recordList.optional() }), req.body, 'batch');
    const { [spec.records]: list, ...batch } = body as z.infer<typeof batchSchema> & { [k: string]: unknown };
    try {
      if (Array.isArray(list) && list.length > 0) {
        const result = await writes.loadRecords(list as object[], batch);
        res.status(201).json({ batch_id: result.batch_id, ...loaded(result) });
      } else {
        res.status(201).json({ batch_id: await writes.upsertBatch(batch) });
      }
    } catch (err) {
      throw loadError(err, spec.idColumn);
    }
  });

  router.get(`${base}/batch/:id`, async (req, res) => {
    const { id } = parseInput(idParam, req.params, 'path');
    const batch = await queries.batch(id, parseInput(pageSchema, req.query, 'query'));
    if (!batch) throw notFound(`batch ${id} not found`);
    res.json(batch);
  });

  router.patch(`${base}/batch/:id`, json, async (req, res) => {
    const { id } = parseInput(idParam, req.params, 'path');
    const patch = parseInput(batchPatchSchema, req.body, 'batch');
    const found = await queries.batch(id, { limit: 1, offset: 0 });
    if (!found) throw notFound(`batch ${id} not found`);
    await writes.upsertBatch({ ...patch, status: patch.status ?? String(found.status), batch_id: id });
    res.json(await queries.batch(id, { limit: 50, offset: 0 }));
  });

  router.delete(`${base}/batch/:id`, async (req, res) => {
    const { id } = parseInput(idParam, req.params, 'path');
    res.json({ batch_id: id, ...(await writes.deleteBatch(id)) });
  });

  router.get(`${base}/models/stats`, async (req, res) => {
    res.json(await queries.statsBy('model', parseInput(filterSchema.strip(), req.query, 'query')));
  });

  router.get(`${base}/hardware/stats`, async (req, res) => {
    res.json(await queries.statsBy('hardware', parseInput(filterSchema.strip(), req.query, 'query')));
  });

  router.get(`${base}/models/:name`, async (req, res) => {
    const { name } = parseInput(z.object({ name: z.string().min(1).max(500) }), req.params, 'path');
    const { recent } = parseInput(
      z.object({ recent: z.coerce.number().int().min(0).max(100).default(10) }),
      req.query,
      'query',
    );
    res.json(await queries.modelSummary(name, recent));
  });

  router.get(`${base}/performance`, async (req, res) => {
    const filters = parseInput(filterSchema.strip(), req.query, 'query');
    const { days } = parseInput(
      z.object({ days: z.coerce.number().int().min(1).max(3650).default(30) }),
      req.query,
      'query',
    );
    res.json(await queries.performance(filters, days));
  });

  const search = async (input: unknown) => {
    const raw = (input ?? {}) as Record<string, unknown>;
    // `q` is the short name; a comma list of tags is accepted in the query string.
    const normalized = {
      ...raw,
      query: raw.query ?? raw.q,
      tags: typeof raw.tags === 'string' ? raw.tags.split(',') : raw.tags,
    };
    delete (normalized as Record<string, unknown>).q;
    const filters = parseInput(filterSchema.extend(pageSchema.shape).strict(), normalized, 'search');
    const { limit, offset, ...f } = filters;
    const found = await queries.list(f, { limit, offset }, { sort: 'created_at', order: 'desc' });
    return { query: f.query ?? null, results: found[spec.records], total: found.total, limit, offset };
  };
  router.post(`${base}/search`, json, async (req, res) => {
    res.json(await search({ ...(req.query as object), ...(req.body ?? {}) }));
  });
  router.get(`${base}/search`, async (req, res) => {
    res.json(await search(req.query));
  });

  const exportHandler = async (req: Request, res: express.Response) => {
    const input = { ...(req.query as object), ...(req.method === 'POST' ? (req.body ?? {}) : {}) } as Record<
      string,
      unknown
    >;
    const { format, table, raw } = parseInput(
      exportSchema,
      { format: input.format, table: input.table, raw: input.raw },
      'export',
    );
    const { raw: _raw, ...filterInput } = input;
    const filters = parseInput(filterSchema.strip(), filterInput, 'export');
    const tables = domainTables(spec);
    if (table !== undefined && !tables.includes(table)) {
      throw badRequest(`table must be one of ${tables.join(', ')}`);
    }
    const stamp = new Date().toISOString().slice(0, 10);
    const name = `${table ?? (format === 'json' ? `${spec.name}-db` : spec.table)}-${stamp}.${format}`;
    res.setHeader('Content-Type', CONTENT_TYPES[format]);
    res.setHeader('Content-Disposition', `attachment; filename="${name}"`);
    if (format === 'json' && table === undefined) await exporter.wholeDatabase(res);
    else await exporter.table(table ?? spec.table, format, filters, res, raw);
  };
  router.post(`${base}/export`, json, exportHandler);
  // Hive-partitioned Parquet by day in the blob store (lake-export.ts), idempotently.
  router.post(`${base}/export/lake`, json, async (req, res) => {
    const { since } = parseInput(
      lakeSchema,
      { ...(req.query as object), ...(req.body ?? {}) },
      'lake export',
    );
    res.json(await deps.lake.export(since));
  });
  router.get(`${base}/export`, exportHandler);

  router.get(`${base}/stats`, async (_req, res) => {
    res.json(await queries.stats());
  });

  return router;
}
