import { z } from 'zod';
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
