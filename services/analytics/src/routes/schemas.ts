import { z } from 'zod';
import { BATCH_STATUSES, type Column, type DomainSpec, recordColumns } from '../domain/domains';
import { MAX_TEXT } from '../domain/loading';

/** Most records one JSON ingest request may carry; bigger loads use the bulk endpoint. */
export const MAX_JSON_RECORDS = 10_000;
const MAX_CHILDREN = 10_000;

const idText = z
  .string()
  .min(1)
  .max(200)
  .regex(/^[\w.:@/+-]+$/, 'letters, digits and . _ : @ / + - only');
/** 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z: times outside have no YYYY-MM-DD day. */
export const EARLIEST_MS = -62_135_596_800_000;
export const LATEST_MS = 253_402_300_799_999;
const when = z.iso.datetime({ offset: true }).refine((v) => {
  // The offset can carry a time past the bounds (`9999-12-31T23:59:59-05:00` is year 10000 in UTC).
  const ms = Date.parse(v);
  return ms >= EARLIEST_MS && ms <= LATEST_MS;
}, 'a time from year 0001 to 9999 in UTC');

function columnSchema(c: Column): z.ZodType {
  switch (c.type) {
    case 'VARCHAR':
      return z.string().max(MAX_TEXT);
    case 'INTEGER':
      return z.number().int().min(-2_147_483_648).max(2_147_483_647);
    case 'BIGINT':
      return z.number().int();
    case 'DOUBLE':
      return z.number().finite();
    case 'BOOLEAN':
      return z.boolean();
    case 'TIMESTAMPTZ':
      return when;
  }
}

function objectFor(columns: Column[], overrides: Record<string, z.ZodType> = {}) {
  const shape: Record<string, z.ZodType> = {};
  for (const c of columns) {
    const base = overrides[c.name] ?? columnSchema(c);
    shape[c.name] = c.required ? base : base.nullable().optional();
  }
  return shape;
}

/** A record as JSON ingest takes it: unknown fields are refused, not dropped. */
export function recordSchema(spec: DomainSpec) {
  const shape = objectFor(recordColumns(spec), {
    [spec.idColumn]: idText,
    batch_id: idText,
    status: z.enum(spec.statuses as [string, ...string[]]),
    model: z.string().min(1).max(MAX_TEXT),
  });
  shape.tags = z.array(z.string().min(1).max(200)).max(64).optional();
  for (const child of spec.children) {
    const obj = z.strictObject(objectFor(child.columns));
    shape[child.key] = (child.single ? obj : z.array(obj).max(MAX_CHILDREN)).nullable().optional();
  }
  return z.strictObject(shape);
}

export const batchSchema = z.strictObject({
  batch_id: idText.optional(),
  name: z.string().max(MAX_TEXT).optional(),
  description: z.string().max(MAX_TEXT).optional(),
  status: z.enum(BATCH_STATUSES as [string, ...string[]]).default('running'),
  expected_count: z.number().int().min(0).max(2_147_483_647).optional(),
  model: z.string().max(MAX_TEXT).optional(),
  hardware: z.string().max(MAX_TEXT).optional(),
  started_at: when.optional(),
  finished_at: when.optional(),
});

export const batchPatchSchema = batchSchema.omit({ batch_id: true }).partial().strict();

export const exportSchema = z.object({
  format: z.enum(['json', 'csv', 'parquet']).default('json'),
  table: z.string().max(100).optional(),
  /** CSV cells as stored, without the formula-injection guard (see export.ts). */
  raw: z
    .union([z.boolean(), z.enum(['true', 'false', '1', '0'])])
    .default(false)
    .transform((v) => v === true || v === 'true' || v === '1'),
});

export const bulkOptionsSchema = z.object({
  /** Any rejected row means nothing is loaded (422 with the report). */
  strict: z
    .enum(['true', 'false', '1', '0'])
    .default('false')
    .transform((v) => v === 'true' || v === '1'),
  max_errors: z.coerce.number().int().min(0).max(10_000).default(100),
  format: z.enum(['ndjson', 'csv']).optional(),
});

export const idParam = z.object({ id: idText });

/** `POST …/export/lake`: rewrite the days from `since` (YYYY-MM-DD, UTC) on; none: every day. */
export const lakeSchema = z
  .object({
    since: z
      .string()
      .regex(/^\d{4}-\d{2}-\d{2}$/, 'a day as YYYY-MM-DD')
      .refine(
        (d) =>
          !Number.isNaN(Date.parse(`${d}T00:00:00Z`)) &&
          new Date(`${d}T00:00:00Z`).toISOString().startsWith(d),
        'not a calendar day',
      )
      .optional(),
  })
  .strict();
