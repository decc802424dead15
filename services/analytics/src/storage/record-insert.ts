import { randomUUID } from 'node:crypto';
import { type ColumnType, type DomainSpec, recordColumns } from '../domain/domains';
import { LoadRejected, type LoadResult, type Rejected } from '../domain/loading';
import { Bound, type Params, type WriteTx } from './duck';
import {
  addTo,
  type Contribution,
  type GroupState,
  type GroupStates,
  TopValues,
  windowSize,
} from './group-state';
import {
  averagedMetrics,
  daySql,
  GROUPINGS,
  type Grouping,
  type GroupKeys,
  groupKey,
  P95,
  successSql,
  wholeMetric,
} from './summaries';
import { type Group, loadStates, topValues, writeGroups } from './summary-states';

/**
 * The fast path for a few records the JSON API has already validated (routes/schemas.ts): one
 * parameterised INSERT, and the summary groups updated from their in-memory states
 * (group-state.ts) instead of recomputed by scanning. A one-record POST into a million rows
 * takes 13–20 ms this way (about three times DuckDB's own floor for a one-row transaction)
 * against ~100 through the staged load (loader.ts), with the same rows, the same refusals and
 * the same exact summaries.
 *
 * Anything else takes the staged load: many records, many child rows, or text that is not
 * well-formed UTF-16 (a lone surrogate), which the staged load refuses as not JSON.
 */

const MAX_RECORDS = 64;
const MAX_CHILD_ROWS = 256;

type Json = Record<string, unknown>;

export function fitsFastPath(spec: DomainSpec, records: object[]): boolean {
  if (records.length > MAX_RECORDS) return false;
  let children = 0;
  for (const r of records as Json[]) {
    for (const c of spec.children) {
      const v = r[c.key];
      children += Array.isArray(v) ? v.length : v ? 1 : 0;
    }
  }
  return children <= MAX_CHILD_ROWS && records.every(wellFormed);
}

/** A UTF-16 surrogate standing alone (with the u flag, a proper pair reads as one code point). */
const LONE_SURROGATE = /\p{Cs}/u;

function wellFormed(value: unknown): boolean {
  if (typeof value === 'string') return !LONE_SURROGATE.test(value);
  if (Array.isArray(value)) return value.every(wellFormed);
  if (value !== null && typeof value === 'object') return Object.values(value).every(wellFormed);
  return true;
}

/** Cast by DuckDB, as the staged load casts its text fields (times are bound as their text). */
function bind(params: Bound, value: unknown, type: ColumnType): string {
  return params.add(value as Params[number] | undefined, type);
}

/** The same verdicts the staged load gives validated records: only ids can still be refused. */
async function refusals(tx: WriteTx, spec: DomainSpec, given: (string | null)[]): Promise<Rejected[]> {
  const seen = new Map<string, number>();
  for (const id of given) if (id !== null) seen.set(id, (seen.get(id) ?? 0) + 1);
  const named = [...seen.keys()];
  const stored = new Set<string>();
  if (named.length > 0) {
    const rows = await tx.queryPrepared<{ id: string }>(
      `SELECT ${spec.idColumn} AS id FROM ${spec.table} WHERE ${spec.idColumn} IN (${named.map((_, i) => `$${i + 1}`).join(', ')})`,
      named,
    );
    for (const r of rows) stored.add(r.id);
  }
  const out: Rejected[] = [];
  given.forEach((id, i) => {
    if (id === null) return;
    const line = i + 1;
    if (seen.get(id)! > 1)
      out.push({ line, id, reason: `${spec.idColumn} appears more than once in this load` });
    else if (stored.has(id)) out.push({ line, id, reason: `${spec.idColumn} already exists` });
  });
  return out;
}

interface Inserted {
  model: string;
  hardware: string | null;
  day: number;
  succeeded: boolean;
  failed: boolean;
  at_us: string;
  [metric: string]: unknown;
}

/**
 * Inserts validated records (fitsFastPath) in the caller's write transaction and brings their
 * summary groups up to date; refusals throw LoadRejected, as a strict staged load does.
 */
export async function insertRecords(
  tx: WriteTx,
  spec: DomainSpec,
  states: GroupStates,
  records: object[],
  batchId?: string,
): Promise<LoadResult> {
  const id = spec.idColumn;
  const given = (records as Json[]).map((r) => (typeof r[id] === 'string' ? (r[id] as string) : null));
  const refused = await refusals(tx, spec, given);
  if (refused.length > 0) {
    throw new LoadRejected({
      accepted: records.length - refused.length,
      rejected: refused.length,
      errors: refused.slice(0, 100),
      ids: [],
      batch_ids: [],
    });
  }
  const ids = given.map((g) => g ?? randomUUID());
  const cols = recordColumns(spec);
  const params = new Bound();
  const values = (records as Json[]).map(
    (r, i) =>
      `(${cols
        .map((c) => {
          if (c.name === id) return bind(params, ids[i], 'VARCHAR');
          if (c.name === 'batch_id' && batchId !== undefined) return bind(params, batchId, 'VARCHAR');
          return bind(params, r[c.name], c.type);
        })
        .join(', ')})`,
  );
  const metrics = averagedMetrics(spec);
  const inserted = await tx.queryPrepared<Inserted>(
    `INSERT INTO ${spec.table} (${cols.map((c) => c.name).join(', ')}) VALUES ${values.join(', ')}
     RETURNING model, hardware, ${daySql('coalesce(started_at, created_at)')} AS day,
               ${successSql(spec, 'status')} AS succeeded, status IN ('failed', 'error') AS failed,
               epoch_us(coalesce(started_at, created_at))::VARCHAR AS at_us,
               ${metrics.map((m, i) => (wholeMetric(spec, m) ? `${m}::VARCHAR AS m${i}` : `${m}::DOUBLE AS m${i}`)).join(', ')}`,
    params,
  );
  await insertTags(tx, spec, records as Json[], ids);
  await insertChildren(tx, spec, records as Json[], ids);
  await updateGroups(tx, spec, states, inserted, ids);

  const batches = new Set<string>();
  for (const r of records as Json[]) {
    const b = batchId ?? (typeof r.batch_id === 'string' ? r.batch_id : undefined);
    if (b !== undefined) batches.add(b);
  }
  return { accepted: records.length, rejected: 0, errors: [], ids, batch_ids: [...batches] };
}

async function insertTags(tx: WriteTx, spec: DomainSpec, records: Json[], ids: string[]): Promise<void> {
  const params = new Bound();
  const rows: string[] = [];
  records.forEach((r, i) => {
    if (!Array.isArray(r.tags)) return;
    for (const tag of new Set(r.tags as string[]))
      rows.push(`(${bind(params, ids[i], 'VARCHAR')}, ${bind(params, tag, 'VARCHAR')})`);
  });
  if (rows.length > 0)
    await tx.runPrepared(
      `INSERT INTO ${spec.tagsTable} (${spec.idColumn}, tag) VALUES ${rows.join(', ')}`,
      params,
    );
}

async function insertChildren(tx: WriteTx, spec: DomainSpec, records: Json[], ids: string[]): Promise<void> {
  for (const child of spec.children) {
    const params = new Bound();
    const rows: string[] = [];
    records.forEach((r, i) => {
      const v = r[child.key];
      const parts = (Array.isArray(v) ? v : v ? [v] : []) as Json[];
      for (const part of parts)
        rows.push(
          `(${[bind(params, ids[i], 'VARCHAR'), ...child.columns.map((c) => bind(params, part[c.name], c.type))].join(', ')})`,
        );
    });
    if (rows.length > 0)
      await tx.runPrepared(
        `INSERT INTO ${child.table} (${spec.idColumn}, ${child.columns.map((c) => c.name).join(', ')}) VALUES ${rows.join(', ')}`,
        params,
      );
  }
}

/**
 * Each touched group: its state before this write (known, or read from the summary table and
 * the records other than these), plus the new records; a p95 window used up is read again,
 * larger. A transaction that does not commit forgets the groups it changed.
 */
async function updateGroups(
  tx: WriteTx,
  spec: DomainSpec,
  states: GroupStates,
  inserted: Inserted[],
  ids: string[],
): Promise<void> {
  const touched = new Map<string, Group & { added: Contribution[] }>();
  const metrics = averagedMetrics(spec);
  for (const row of inserted) {
    const keys: GroupKeys = { model: row.model, hardware: row.hardware, day: Number(row.day) };
    const contribution: Contribution = {
      succeeded: row.succeeded,
      failed: row.failed,
      metrics: metrics.map((m, i) => {
        const v = row[`m${i}`] as string | number | null;
        if (v === null || v === undefined) return null;
        return wholeMetric(spec, m) ? BigInt(v) : Number(v);
      }),
      atUs: BigInt(row.at_us),
      hardware: row.hardware,
      model: row.model,
    };
    for (const grouping of Object.keys(GROUPINGS) as Grouping[]) {
      const key = groupKey(grouping, keys);
      const t = touched.get(key) ?? { grouping, keys, added: [] };
      t.added.push(contribution);
      touched.set(key, t);
    }
  }
  const unknown = [...touched].filter(([key]) => !states.get(key)).map(([, t]) => t);
  const loaded = await loadStates(tx, spec, unknown, ids);
  // States change in place: copying them cost ~1 ms a write per million records (the larger
  // windows hold a tenth of their group). A write that does not commit makes them be read again.
  for (const [key, state] of loaded) states.set(key, state);
  const keys = [...touched.keys()];
  tx.afterRollback(() => states.forget(keys));
  const totalBefore = new Map(keys.map((key) => [key, states.get(key)!.total]));

  const groups: (Group & { key: string; state: GroupState; stored: boolean })[] = [];
  for (const [key, t] of touched) {
    const state = states.get(key)!;
    for (const c of t.added) addTo(state, c);
    if (state.top.quantile(P95) === undefined) {
      // The window ran out: read the one before this write again, larger, and add to it.
      const values = t.added.flatMap((c) => (c.metrics[0] === null ? [] : [Number(c.metrics[0])]));
      const count = state.top.count - values.length;
      const top = await topValues(tx, spec, t, windowSize(count + values.length, P95), ids);
      state.top = new TopValues(top, count - top.length);
      for (const v of values) state.top.add(v);
    }
    // A model gains a hardware (a hardware a model) when that pair's group had no records.
    if (t.grouping === 'model' || t.grouping === 'hardware') {
      const pairs = new Set<string>();
      for (const c of t.added) {
        // count(DISTINCT hardware) leaves out records without one; models are never null.
        if (c.hardware === null && t.grouping === 'model') continue;
        const pair = groupKey('model_hardware', { model: c.model, hardware: c.hardware, day: null });
        if (totalBefore.get(pair) === 0) pairs.add(pair);
      }
      state.distinct = (state.distinct ?? 0) + pairs.size;
    }
    groups.push({ key, grouping: t.grouping, keys: t.keys, state, stored: totalBefore.get(key)! > 0 });
  }
  await writeGroups(tx, spec, groups);
}
