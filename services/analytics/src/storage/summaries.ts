import { type DomainSpec, recordColumns } from '../domain/domains';
import type { DuckDb, Params, WriteTx } from './duck';

/**
 * Per-group summaries kept current at write time. The unfiltered aggregates (model and hardware
 * stats, the performance report, a model's summary) read their few rows from here instead of
 * scanning every record: on a million rows a scan with an exact p95 takes 50–60 ms per grouping
 * and the report needs two. A write recomputes only the groups it touched, in its own
 * transaction, so answers are exact and include the write. The table is derived data: it is
 * rebuilt from the records at every start.
 */

/**
 * UTC epoch day of a timestamp expression: its microseconds floored to whole days, in integers,
 * so it agrees to the microsecond with the day ranges of keyPredicate. (DuckDB's // truncates
 * toward zero, which put 1969-12-31 on day 0, and epoch_ms truncates too.)
 */
export const daySql = (at: string) =>
  `((epoch_us(${at}) - CASE WHEN epoch_us(${at}) < 0 THEN 86399999999 ELSE 0 END) // 86400000000)`;
/** UTC epoch day of a record over alias r: when it started, or else when it was recorded. */
export const DAY_SQL = daySql('coalesce(r.started_at, r.created_at)');

/** `all`: one group of every record, for the overview's totals. */
export type Grouping = 'model' | 'hardware' | 'model_hardware' | 'day' | 'all';

export const KEYS = ['model', 'hardware', 'day'] as const;
export const GROUPINGS: Record<Grouping, (typeof KEYS)[number][]> = {
  model: ['model'],
  hardware: ['hardware'],
  model_hardware: ['model', 'hardware'],
  day: ['day'],
  all: [],
};

/** Predicates joined by AND; none is every row. */
export const allOf = (parts: string[]) => (parts.length > 0 ? parts.join(' AND ') : 'true');
export const KEY_SQL = { model: 'r.model', hardware: 'r.hardware', day: DAY_SQL };
export const KEY_TYPE = { model: 'VARCHAR', hardware: 'VARCHAR', day: 'BIGINT' };
const AFFECTED = 'summary_affected_keys';

export const summaryTable = (spec: DomainSpec) => `${spec.table}_summary`;

/** Whether `status` (a column) is one of the domain's success statuses (fixed words, not input). */
export const successSql = (spec: DomainSpec, status = 'r.status') =>
  `${status} IN (${spec.successStatuses.map((s) => `'${s}'`).join(', ')})`;

/** count, success rate, metric averages and p95, for GROUP BY queries over alias r. */
export function summarySql(spec: DomainSpec): string {
  const m = spec.primaryMetric;
  const success = successSql(spec);
  return [
    'count(*)::INTEGER AS total',
    `count(*) FILTER (WHERE ${success})::INTEGER AS succeeded`,
    `count(*) FILTER (WHERE r.status IN ('failed', 'error'))::INTEGER AS failed`,
    `round(count(*) FILTER (WHERE ${success}) / count(*), 4) AS success_rate`,
    `avg(r.${m}) AS avg_${m}`,
    `quantile_cont(r.${m}, 0.95) AS p95_${m}`,
    ...spec.summaryMetrics.map((s) => `avg(r.${s}) AS avg_${s}`),
    'max(coalesce(r.started_at, r.created_at)) AS last_at',
  ].join(', ');
}

/** The names summarySql gives its columns, to read them back from the summary table. */
export function summaryColumns(spec: DomainSpec): string {
  const m = spec.primaryMetric;
  return [
    'total',
    'succeeded',
    'failed',
    'success_rate',
    `avg_${m}`,
    `p95_${m}`,
    ...spec.summaryMetrics.map((s) => `avg_${s}`),
    'last_at',
  ].join(', ');
}

/** The metrics a group averages, the primary one first. */
export const averagedMetrics = (spec: DomainSpec) => [spec.primaryMetric, ...spec.summaryMetrics];

/**
 * Whether a metric is a whole-number column. DuckDB sums those exactly (HUGEINT) before it
 * divides, so the sum behind their average is kept exact too: as a double, 2^53 - 1 + 2 loses
 * its last bit and the average goes wrong by far more than rounding.
 */
export function wholeMetric(spec: DomainSpec, name: string): boolean {
  let names = wholeColumns.get(spec);
  if (!names) {
    names = new Set(
      recordColumns(spec)
        .filter((c) => c.type === 'INTEGER' || c.type === 'BIGINT')
        .map((c) => c.name),
    );
    wholeColumns.set(spec, names);
  }
  return names.has(name);
}
/** Per spec, once: asked per metric of every record on the fast path. */
const wholeColumns = new WeakMap<DomainSpec, Set<string>>();

/** The quantile the summaries report. */
export const P95 = 0.95;

export const distinctSql = (grouping: Grouping) => ({
  hardware_count: grouping === 'model' ? 'count(DISTINCT r.hardware)::INTEGER' : 'NULL::INTEGER',
  model_count: grouping === 'hardware' ? 'count(DISTINCT r.model)::INTEGER' : 'NULL::INTEGER',
});

/**
 * What a stored group holds: summarySql and what only some answers show (the distinct counts
 * only where they are read: they cost as much as the rest together), and the sums and counts
 * behind the averages, which the fast write path adds to (group-state.ts).
 */
function storedSql(spec: DomainSpec, grouping: Grouping): string {
  const m = spec.primaryMetric;
  const distinct = distinctSql(grouping);
  return [
    summarySql(spec),
    `min(r.${m}) AS min_${m}`,
    `max(r.${m}) AS max_${m}`,
    'min(coalesce(r.started_at, r.created_at)) AS first_at',
    `${distinct.hardware_count} AS hardware_count`,
    `${distinct.model_count} AS model_count`,
    ...averagedMetrics(spec).flatMap((x) => [
      `sum(r.${x})::${wholeMetric(spec, x) ? 'HUGEINT' : 'DOUBLE'} AS sum_${x}`,
      `count(r.${x})::BIGINT AS n_${x}`,
    ]),
  ].join(', ');
}

/** One grouping's rows, over the records `filter` (a JOIN or WHERE clause over r, or '') keeps. */
function groupSelect(spec: DomainSpec, grouping: Grouping, filter = ''): string {
  const keys = GROUPINGS[grouping];
  const columns = KEYS.map((k) =>
    keys.includes(k) ? `${KEY_SQL[k]} AS ${k}` : `NULL::${KEY_TYPE[k]} AS ${k}`,
  );
  // HAVING: a grouping without keys is a plain aggregate, which answers a row even over no records.
  return `SELECT '${grouping}' AS grouping, ${columns.join(', ')}, ${storedSql(spec, grouping)}
          FROM ${spec.table} r ${filter} GROUP BY ALL HAVING count(*) > 0`;
}

export type Key = (typeof KEYS)[number];
export type KeyValue = string | number | null;
/** A record's place in the groupings: its model, hardware and day. */
export type GroupKeys = Record<Key, KeyValue>;

/** One group's identity, as a map key: its grouping and the values of that grouping's keys. */
export function groupKey(grouping: Grouping, keys: GroupKeys): string {
  return JSON.stringify([grouping, ...GROUPINGS[grouping].map((k) => keys[k])]);
}

/**
 * A predicate matching the groups whose `key` is one of `values`: over the records (alias r)
 * or over stored groups (alias s). Values are bound; days are whole numbers, and over the
 * records become ranges of the timestamp, so no row needs arithmetic.
 */
export function keyPredicate(
  key: Key,
  values: KeyValue[],
  over: 'records' | 'stored',
  params: Params,
): string {
  const parts: string[] = [];
  const present = values.filter((v) => v !== null);
  if (key === 'day' && over === 'records') {
    const at = 'coalesce(r.started_at, r.created_at)';
    for (const d of present.map(Number).filter(Number.isInteger)) {
      parts.push(`(${at} >= to_timestamp(${d * 86_400}) AND ${at} < to_timestamp(${(d + 1) * 86_400}))`);
    }
  } else if (present.length > 0) {
    const column = over === 'records' ? `r.${key}` : `s.${key}`;
    parts.push(
      `${column} IN (${present.map((v) => {
        params.push(v);
        return `$${params.length}`;
      })})`,
    );
  }
  if (values.includes(null)) parts.push(over === 'records' ? `${KEY_SQL[key]} IS NULL` : `s.${key} IS NULL`);
  return parts.length > 0 ? `(${parts.join(' OR ')})` : 'false';
}

/** Up to this many touched groups are named in the statements; more are joined against. */
const MAX_LISTED = 64;

const allGroupsSql = (spec: DomainSpec) =>
  (Object.keys(GROUPINGS) as Grouping[]).map((g) => groupSelect(spec, g)).join(' UNION ALL ');

/** Recomputes every group from the records (at start: the table is derived, never migrated). */
export async function rebuildSummaries(db: DuckDb, spec: DomainSpec): Promise<void> {
  await db.write((tx) => tx.run(`CREATE OR REPLACE TABLE ${summaryTable(spec)} AS ${allGroupsSql(spec)}`));
}

/**
 * Notes the groups some records belong to. `select` yields model, hardware and day columns;
 * call it after inserting records, or before deleting them, then `refreshAffected`.
 */
export async function markAffected(tx: WriteTx, select: string, params: Params = []): Promise<void> {
  await tx.run(
    `CREATE TEMP TABLE IF NOT EXISTS ${AFFECTED} (model VARCHAR, hardware VARCHAR, day BIGINT, records BIGINT)`,
  );
  await tx.run(
    `INSERT INTO ${AFFECTED} SELECT model, hardware, day, count(*) FROM (${select}) GROUP BY ALL`,
    params,
  );
}

/**
 * Recomputes the groups noted by `markAffected` in this transaction. A few touched groups
 * (the usual write) are named in the statements, so DuckDB filters while it scans; many (a bulk
 * load) are joined against. Naming models and hardware separately can take in more
 * model-and-hardware groups than were touched: those are recomputed too, to the same values.
 */
export async function refreshAffected(tx: WriteTx, spec: DomainSpec): Promise<string[] | 'all'> {
  const table = summaryTable(spec);
  const [share] = await tx.query<{ touched: number; remaining: number }>(
    `SELECT (SELECT coalesce(sum(records), 0) FROM ${AFFECTED})::BIGINT AS touched,
            (SELECT count(*) FROM ${spec.table})::BIGINT AS remaining`,
  );
  if (share && share.touched > 0 && share.touched * 2 >= share.remaining) {
    // A write of half the records or more (a first load, say): recomputing every group is
    // cheaper than finding the touched ones (0.4 s against 0.7 s for a million rows).
    await tx.run(`DELETE FROM ${table}`);
    await tx.run(`INSERT INTO ${table} ${allGroupsSql(spec)}`);
    await tx.run(`DROP TABLE ${AFFECTED}`);
    return 'all';
  }
  const touched = await tx.query<Record<Key, KeyValue>>(
    `SELECT DISTINCT model, hardware, day FROM ${AFFECTED} LIMIT ${MAX_LISTED + 1}`,
  );
  for (const grouping of Object.keys(GROUPINGS) as Grouping[]) {
    const keys = GROUPINGS[grouping];
    // The `all` group has no keys to name or join on: it is recomputed whole.
    if (touched.length <= MAX_LISTED || keys.length === 0) {
      const values = (k: Key) => [...new Set(touched.map((t) => t[k]))];
      const storedParams: Params = [];
      const stored = allOf(keys.map((k) => keyPredicate(k, values(k), 'stored', storedParams)));
      await tx.run(`DELETE FROM ${table} s WHERE s.grouping = '${grouping}' AND ${stored}`, storedParams);
      const recordParams: Params = [];
      const records = allOf(keys.map((k) => keyPredicate(k, values(k), 'records', recordParams)));
      await tx.run(`INSERT INTO ${table} ${groupSelect(spec, grouping, `WHERE ${records}`)}`, recordParams);
    } else {
      await tx.run(
        `DELETE FROM ${table} s WHERE s.grouping = '${grouping}' AND EXISTS (
           SELECT 1 FROM ${AFFECTED} a WHERE ${keys.map((k) => `s.${k} IS NOT DISTINCT FROM a.${k}`).join(' AND ')})`,
      );
      const join = `SEMI JOIN (SELECT DISTINCT ${keys.join(', ')} FROM ${AFFECTED}) a ON ${keys
        .map((k) => `${KEY_SQL[k]} IS NOT DISTINCT FROM a.${k}`)
        .join(' AND ')}`;
      await tx.run(`INSERT INTO ${table} ${groupSelect(spec, grouping, join)}`);
    }
  }
  await tx.run(`DROP TABLE ${AFFECTED}`);
  if (touched.length > MAX_LISTED) return 'all';
  return touched.flatMap((t) => (Object.keys(GROUPINGS) as Grouping[]).map((g) => groupKey(g, t)));
}
