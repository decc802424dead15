import { z } from 'zod';
import type { Params } from '../storage/duck';
import { type DomainSpec, recordColumns } from './domains';

export const MAX_PAGE = 1000;
export const MAX_QUERY_CHARS = 200;

const text = z.string().trim().min(1).max(MAX_QUERY_CHARS);
const when = z.iso.datetime({ offset: true }).or(z.iso.date());

/** Filters shared by list, search and export; every value is bound, never spliced into SQL. */
export const filterSchema = z.object({
  model: text.optional(),
  hardware: text.optional(),
  status: text.optional(),
  batch_id: text.optional(),
  tag: text.optional(),
  tags: z.array(text).max(20).optional(),
  /** Free text: id, model, hardware, error message, the domain's text columns and tags. */
  query: z.string().trim().max(MAX_QUERY_CHARS).optional(),
  since: when.optional(),
  until: when.optional(),
});
export type Filters = z.infer<typeof filterSchema>;

export const pageSchema = z.object({
  limit: z.coerce.number().int().min(1).max(MAX_PAGE).default(50),
  offset: z.coerce.number().int().min(0).max(10_000_000).default(0),
});

export function sortSchema(spec: DomainSpec) {
  const sortable = [...recordColumns(spec).map((c) => c.name), 'created_at'] as unknown as [
    string,
    ...string[],
  ];
  return z.object({
    sort: z.enum(sortable).default('created_at'),
    order: z.enum(['asc', 'desc']).default('desc'),
  });
}

/** LIKE metacharacters in user text match themselves. */
export function likePattern(s: string): string {
  return `%${s.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/** WHERE clause (with a leading WHERE, or empty) over alias `r` of the main table. */
export function whereSql(spec: DomainSpec, f: Filters, params: Params): string {
  const clauses: string[] = [];
  const bind = (v: string) => {
    params.push(v);
    return `$${params.length}`;
  };
  if (f.model) clauses.push(`r.model = ${bind(f.model)}`);
  if (f.hardware) clauses.push(`r.hardware = ${bind(f.hardware)}`);
  if (f.status) clauses.push(`r.status = ${bind(f.status)}`);
  if (f.batch_id) clauses.push(`r.batch_id = ${bind(f.batch_id)}`);
  if (f.since) clauses.push(`coalesce(r.started_at, r.created_at) >= ${bind(f.since)}::TIMESTAMPTZ`);
  if (f.until) clauses.push(`coalesce(r.started_at, r.created_at) < ${bind(f.until)}::TIMESTAMPTZ`);
  for (const tag of [...(f.tag ? [f.tag] : []), ...(f.tags ?? [])]) {
    clauses.push(
      `r.${spec.idColumn} IN (SELECT ${spec.idColumn} FROM ${spec.tagsTable} WHERE tag = ${bind(tag)})`,
    );
  }
  if (f.query) {
    const p = bind(likePattern(f.query));
    // Ids match whole (an id is looked up, not browsed); names, messages and tags match in part.
    const exact = bind(f.query);
    const texts = recordColumns(spec)
      .filter((c) => c.type === 'VARCHAR' && !['status', spec.idColumn, 'batch_id'].includes(c.name))
      .map((c) => `r.${c.name} ILIKE ${p} ESCAPE '\\'`);
    texts.push(`r.${spec.idColumn} = ${exact}`, `r.batch_id = ${exact}`);
    texts.push(
      `r.${spec.idColumn} IN (SELECT ${spec.idColumn} FROM ${spec.tagsTable} WHERE tag ILIKE ${p} ESCAPE '\\')`,
    );
    clauses.push(`(${texts.join(' OR ')})`);
  }
  return clauses.length > 0 ? `WHERE ${clauses.join(' AND ')}` : '';
}
