import { timestampTZValue } from '@duckdb/node-api';
import type { DomainSpec } from '../domain/domains';
import { Bound, type Params, type WriteTx } from './duck';
import { exactQuotient, type GroupState, TopValues, windowSize } from './group-state';
import {
  allOf,
  averagedMetrics,
  GROUPINGS,
  type Grouping,
  type GroupKeys,
  groupKey,
  KEY_SQL,
  KEY_TYPE,
  KEYS,
  keyPredicate,
  P95,
  summaryTable,
  wholeMetric,
} from './summaries';

/**
 * Between the summary table and the fast path's group states (group-state.ts): a state is read
 * from its stored row (counts, sums, extremes) and the group's largest values (the p95 window);
 * written back as the row readers see.
 */

export interface Group {
  grouping: Grouping;
  keys: GroupKeys;
}

type StoredRow = Record<string, string | number | null>;

/** The stored rows' columns a state is made of (timestamps as exact microseconds). */
function stateColumns(spec: DomainSpec): string {
  const m = spec.primaryMetric;
  return [
    's.grouping',
    ...KEYS.map((k) => `s.${k}`),
    's.total',
    's.succeeded',
    's.failed',
    // Exact sums come as text: a HUGEINT is past what a JavaScript number holds exactly.
    ...averagedMetrics(spec).flatMap((x, i) => [
      wholeMetric(spec, x) ? `s.sum_${x}::VARCHAR AS s${i}` : `s.sum_${x} AS s${i}`,
      `s.n_${x} AS n${i}`,
    ]),
    `s.min_${m} AS min`,
    `s.max_${m} AS max`,
    'epoch_us(s.first_at)::VARCHAR AS first_us',
    'epoch_us(s.last_at)::VARCHAR AS last_us',
    'coalesce(s.hardware_count, s.model_count) AS distinct_count',
  ].join(', ');
}

function keysOf(row: StoredRow): GroupKeys {
  return {
    model: row.model ?? null,
    hardware: row.hardware ?? null,
    day: row.day === null ? null : Number(row.day),
  };
}

function stateOf(spec: DomainSpec, row: StoredRow, top: number[]): GroupState {
  const metrics = averagedMetrics(spec);
  const us = (v: unknown) => (v === null || v === undefined ? null : BigInt(v as string));
  return {
    total: Number(row.total),
    succeeded: Number(row.succeeded),
    failed: Number(row.failed),
    sums: metrics.map((x, i) =>
      wholeMetric(spec, x) ? BigInt(row[`s${i}`] ?? 0) : Number(row[`s${i}`] ?? 0),
    ),
    counts: metrics.map((_, i) => Number(row[`n${i}`])),
    min: (row.min as number | null) ?? null,
    max: (row.max as number | null) ?? null,
    firstUs: us(row.first_us),
    lastUs: us(row.last_us),
    distinct: (row.distinct_count as number | null) ?? null,
    top: new TopValues(top, Number(row.n0) - top.length),
  };
}

/** A group with no records yet. */
export function emptyState(spec: DomainSpec, grouping: Grouping): GroupState {
  const metrics = averagedMetrics(spec);
  return {
    total: 0,
    succeeded: 0,
    failed: 0,
    sums: metrics.map((x) => (wholeMetric(spec, x) ? 0n : 0)),
    counts: metrics.map(() => 0),
    min: null,
    max: null,
    firstUs: null,
    lastUs: null,
    distinct: grouping === 'model' || grouping === 'hardware' ? 0 : null,
    top: new TopValues([], 0),
  };
}

/** Matches these groups' stored rows (alias s); binds their keys into `params`. */
function storedMatch(groups: Group[], params: Bound): string {
  return groups
    .map(
      (g) =>
        `(s.grouping = ${params.add(g.grouping, 'VARCHAR')} AND ${KEYS.map((k) => `s.${k} IS NOT DISTINCT FROM ${params.add(GROUPINGS[g.grouping].includes(k) ? g.keys[k] : null, KEY_TYPE[k])}`).join(' AND ')})`,
    )
    .join(' OR ');
}

/**
 * The group's `size` largest values of the primary metric, ascending, leaving out the records
 * `excluded` names (those this transaction has just inserted: the state is the one before them).
 */
export async function topValues(
  tx: WriteTx,
  spec: DomainSpec,
  group: Group,
  size: number,
  excluded: string[],
): Promise<number[]> {
  const m = spec.primaryMetric;
  const params: Params = [];
  const where = allOf(
    GROUPINGS[group.grouping].map((k) => keyPredicate(k, [group.keys[k]], 'records', params)),
  );
  const skip = excluded.map((id) => {
    params.push(id);
    return `$${params.length}`;
  });
  const rows = await tx.query<{ v: number }>(
    `SELECT r.${m}::DOUBLE AS v FROM ${spec.table} r
     WHERE ${where} AND r.${m} IS NOT NULL ${skip.length > 0 ? `AND r.${spec.idColumn} NOT IN (${skip.join(', ')})` : ''}
     ORDER BY r.${m} DESC LIMIT ${size}`,
    params,
  );
  return rows.map((r) => r.v).reverse();
}

/**
 * The states of these groups as stored, before the records `excluded` names were inserted
 * (their rows in the summary table are from before this write; their values are left out of
 * the windows). A group without a stored row is new: an empty state.
 */
export async function loadStates(
  tx: WriteTx,
  spec: DomainSpec,
  groups: Group[],
  excluded: string[],
): Promise<Map<string, GroupState>> {
  const out = new Map<string, GroupState>();
  if (groups.length === 0) return out;
  const params = new Bound();
  const rows = await tx.queryPrepared<StoredRow>(
    `SELECT ${stateColumns(spec)} FROM ${summaryTable(spec)} s WHERE ${storedMatch(groups, params)}`,
    params,
  );
  const stored = new Map(rows.map((r) => [groupKey(r.grouping as Grouping, keysOf(r)), r]));
  for (const g of groups) {
    const key = groupKey(g.grouping, g.keys);
    const row = stored.get(key);
    if (!row) {
      out.set(key, emptyState(spec, g.grouping));
      continue;
    }
    const count = Number(row.n0);
    const top = count > 0 ? await topValues(tx, spec, g, windowSize(count, P95), excluded) : [];
    out.set(key, stateOf(spec, row, top));
  }
  return out;
}

/**
 * Every group's state, from the summary table and one window query per grouping (~0.3 s each
 * for a million records here). Run on a snapshot; GroupStates.finishWarm installs the result.
 */
export async function allStates(tx: WriteTx, spec: DomainSpec): Promise<Map<string, GroupState>> {
  const m = spec.primaryMetric;
  const rows = await tx.query<StoredRow>(`SELECT ${stateColumns(spec)} FROM ${summaryTable(spec)} s`);
  const tops = new Map<string, number[]>();
  for (const grouping of Object.keys(GROUPINGS) as Grouping[]) {
    const keys = GROUPINGS[grouping];
    const columns = KEYS.map((k) =>
      keys.includes(k) ? `${KEY_SQL[k]} AS ${k}` : `NULL::${KEY_TYPE[k]} AS ${k}`,
    );
    const partition = keys.length > 0 ? `PARTITION BY ${keys.join(', ')}` : '';
    const reader = await tx.conn.runAndReadAll(
      `SELECT ${KEYS.join(', ')}, v FROM (
         SELECT ${columns.join(', ')}, r.${m}::DOUBLE AS v,
                row_number() OVER (${partition} ORDER BY r.${m} DESC) AS rn,
                count(*) OVER (${partition}) AS n
         FROM ${spec.table} r WHERE r.${m} IS NOT NULL)
       WHERE rn <= least(n, 2 * (n - floor((n - 1) * ${P95})) + 64)
       ORDER BY ${[...keys, 'v'].join(', ')}`,
    );
    // Column-wise: half a million values cross into JavaScript for a million records.
    const [model, hardware, day, v] = reader.getColumnsJS() as [
      (string | null)[],
      (string | null)[],
      (bigint | null)[],
      number[],
    ];
    for (let i = 0; i < v.length; i++) {
      const key = groupKey(grouping, {
        model: model[i] ?? null,
        hardware: hardware[i] ?? null,
        day: day[i] === null || day[i] === undefined ? null : Number(day[i]),
      });
      let list = tops.get(key);
      if (!list) {
        list = [];
        tops.set(key, list);
      }
      list.push(v[i]!);
    }
  }
  const out = new Map<string, GroupState>();
  for (const row of rows) {
    const key = groupKey(row.grouping as Grouping, keysOf(row));
    out.set(key, stateOf(spec, row, tops.get(key) ?? []));
  }
  return out;
}

function average(sum: number | bigint, count: number): number | null {
  if (count === 0) return null;
  return typeof sum === 'bigint' ? exactQuotient(sum, count) : sum / count;
}

/**
 * Writes these groups' rows, computed from their states: one UPDATE for the groups that have a
 * row (`stored`), one INSERT for new ones. (DELETE and INSERT of the same rows cost 1.6× this.)
 */
export async function writeGroups(
  tx: WriteTx,
  spec: DomainSpec,
  groups: (Group & { state: GroupState; stored: boolean })[],
): Promise<void> {
  const table = summaryTable(spec);
  const m = spec.primaryMetric;
  const metrics = averagedMetrics(spec);
  const at = (us: bigint | null) => (us === null ? null : timestampTZValue(us));
  // One group's row as [column, value] pairs, so the names and the values cannot drift apart.
  const row = ({ grouping, keys, state: s }: (typeof groups)[number], b: Bound): [string, string][] => {
    const p95 = s.top.quantile(P95);
    if (p95 === undefined) throw new Error('a group state was written without its p95 window');
    const total = b.add(s.total, 'INTEGER');
    const succeeded = b.add(s.succeeded, 'INTEGER');
    return [
      ['grouping', b.add(grouping, 'VARCHAR')],
      ...KEYS.map((k): [string, string] => [
        k,
        b.add(GROUPINGS[grouping].includes(k) ? keys[k] : null, KEY_TYPE[k]),
      ]),
      ['total', total],
      ['succeeded', succeeded],
      ['failed', b.add(s.failed, 'INTEGER')],
      // As summarySql: count / count is a DOUBLE division in DuckDB.
      ['success_rate', `round(${succeeded} / ${total}, 4)`],
      ...metrics.map((x, i): [string, string] => [
        `avg_${x}`,
        b.add(average(s.sums[i]!, s.counts[i]!), 'DOUBLE'),
      ]),
      [`p95_${m}`, b.add(p95, 'DOUBLE')],
      ['last_at', b.add(at(s.lastUs), 'TIMESTAMPTZ')],
      [`min_${m}`, b.add(s.min, 'DOUBLE')],
      [`max_${m}`, b.add(s.max, 'DOUBLE')],
      ['first_at', b.add(at(s.firstUs), 'TIMESTAMPTZ')],
      ['hardware_count', b.add(grouping === 'model' ? s.distinct : null, 'INTEGER')],
      ['model_count', b.add(grouping === 'hardware' ? s.distinct : null, 'INTEGER')],
      ...metrics.flatMap((x, i): [string, string][] => {
        const sum = s.counts[i]! > 0 ? s.sums[i]! : null;
        return [
          [
            `sum_${x}`,
            wholeMetric(spec, x)
              ? b.add(sum === null ? null : String(sum), 'HUGEINT')
              : b.add(sum === null ? null : Number(sum), 'DOUBLE'),
          ],
          [`n_${x}`, b.add(s.counts[i]!, 'BIGINT')],
        ];
      }),
    ];
  };
  const write = (list: typeof groups) => {
    const params = new Bound();
    const rows = list.map((g) => row(g, params));
    const columns = rows[0]!.map(([c]) => c);
    const values = rows.map((r) => `(${r.map(([, v]) => v).join(', ')})`).join(', ');
    return { params, columns, values };
  };
  const stored = groups.filter((g) => g.stored);
  if (stored.length > 0) {
    const { params, columns, values } = write(stored);
    const set = columns.filter((c) => c !== 'grouping' && !(KEYS as readonly string[]).includes(c));
    await tx.runPrepared(
      `UPDATE ${table} s SET ${set.map((c) => `${c} = v.${c}`).join(', ')}
       FROM (VALUES ${values}) v(${columns.join(', ')})
       WHERE s.grouping = v.grouping AND ${KEYS.map((k) => `s.${k} IS NOT DISTINCT FROM v.${k}`).join(' AND ')}`,
      params,
    );
  }
  const fresh = groups.filter((g) => !g.stored);
  if (fresh.length > 0) {
    const { params, columns, values } = write(fresh);
    await tx.runPrepared(`INSERT INTO ${table} (${columns.join(', ')}) VALUES ${values}`, params);
  }
}
