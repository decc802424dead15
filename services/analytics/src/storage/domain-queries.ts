import type { DomainSpec } from '../domain/domains';
import type { Filters } from '../domain/filters';
import type { DuckDb, Params, Row } from './duck';
import { DAY_SQL, successSql, summaryColumns, summarySql, summaryTable } from './summaries';
import { whereSql } from './where-sql';

/** No filter given: the answer can come from the summary table. */
const unfiltered = (f: Filters) =>
  Object.values(f).every((v) => v === undefined || (Array.isArray(v) && v.length === 0));

/**
 * Read side of a domain. Every aggregate runs inside DuckDB and only the result crosses into
 * JavaScript; unfiltered ones read the summary table kept at write time (summaries.ts), filtered
 * ones scan the records. Pages are capped by the route schemas.
 */
export class DomainQueries {
  constructor(
    private readonly db: DuckDb,
    readonly spec: DomainSpec,
  ) {}

  /** Stored groups of one kind, with the summary columns and `extra` ones. */
  private stored(grouping: string, keys: string, extra = '', where = '', params: Params = []) {
    return this.db.cachedQuery(
      `SELECT ${keys}, ${summaryColumns(this.spec)}${extra} FROM ${summaryTable(this.spec)}
       WHERE grouping = '${grouping}' ${where}`,
      params,
    );
  }

  async list(
    filters: Filters,
    page: { limit: number; offset: number },
    sort = { sort: 'created_at', order: 'desc' },
  ) {
    const params: Params = [];
    const where = whereSql(this.spec, filters, params);
    const t = this.spec.table;
    const id = this.spec.idColumn;
    const order = `${sort.order === 'asc' ? 'ASC' : 'DESC'} NULLS LAST`;
    // The filters are evaluated once, keeping only each match's id and sort key; the count and
    // the page come from those, and only the page's rows are read whole. (A window count over
    // whole rows, or a count and a page as two queries, cost two to three times as much.)
    const rows = await this.db.cachedQuery(
      `WITH matched AS MATERIALIZED (SELECT r.${id}, r.${sort.sort} AS sort_key FROM ${t} r ${where}),
            page AS (SELECT ${id} FROM matched ORDER BY sort_key ${order}, ${id} LIMIT ${page.limit} OFFSET ${page.offset})
       SELECT r.*, (SELECT count(*) FROM matched) AS total_rows,
              (SELECT list(tag ORDER BY tag) FROM ${this.spec.tagsTable} g WHERE g.${id} = r.${id}) AS tags
       FROM ${t} r SEMI JOIN page USING (${id})
       ORDER BY r.${sort.sort} ${order}, r.${id}`,
      params,
    );
    // Past the last page there is no row to carry the count: ask for it alone.
    const total =
      rows.length > 0
        ? Number(rows[0]!.total_rows)
        : Number(
            (await this.db.cachedQuery<{ n: number }>(`SELECT count(*) AS n FROM ${t} r ${where}`, params))[0]
              ?.n ?? 0,
          );
    return {
      [this.spec.records]: rows.map(({ total_rows: _, ...r }) => withTags(r)),
      total,
      limit: page.limit,
      offset: page.offset,
    };
  }

  async get(id: string): Promise<Row | undefined> {
    const { spec } = this;
    const key = spec.idColumn;
    const [row] = await this.db.cachedQuery(`SELECT * FROM ${spec.table} WHERE ${key} = $1`, [id]);
    if (!row) return undefined;
    const tags = await this.db.cachedQuery<{ tag: string }>(
      `SELECT tag FROM ${spec.tagsTable} WHERE ${key} = $1 ORDER BY tag`,
      [id],
    );
    const out: Row = { ...row, tags: tags.map((t) => t.tag) };
    for (const child of spec.children) {
      const order = child.columns.some((c) => c.name === 'step_no') ? 'ORDER BY step_no' : '';
      const rows = await this.db.cachedQuery(
        `SELECT * EXCLUDE (${key}) FROM ${child.table} WHERE ${key} = $1 ${order}`,
        [id],
      );
      out[child.key] = child.single ? (rows[0] ?? null) : rows;
    }
    return out;
  }

  async batches(page: { limit: number; offset: number }, status?: string) {
    const { spec } = this;
    const params: Params = status ? [status] : [];
    const where = status ? 'WHERE b.status = $1' : '';
    const [count] = await this.db.cachedQuery<{ n: number }>(
      `SELECT count(*)::BIGINT AS n FROM ${spec.batchTable} b ${where}`,
      params,
    );
    const rows = await this.db.cachedQuery(
      `SELECT b.*, coalesce(c.total, 0) AS ${spec.records}_count, coalesce(c.succeeded, 0) AS succeeded_count
       FROM ${spec.batchTable} b
       LEFT JOIN (SELECT r.batch_id, count(*)::INTEGER AS total, count(*) FILTER (WHERE ${successSql(spec)})::INTEGER AS succeeded
                  FROM ${spec.table} r WHERE r.batch_id IS NOT NULL GROUP BY r.batch_id) c USING (batch_id)
       ${where}
       ORDER BY b.created_at DESC, b.batch_id LIMIT ${page.limit} OFFSET ${page.offset}`,
      params,
    );
    return { batches: rows, total: count?.n ?? 0, limit: page.limit, offset: page.offset };
  }

  async batch(id: string, page: { limit: number; offset: number }) {
    const { spec } = this;
    const [batch] = await this.db.cachedQuery<Row & { status: string }>(
      `SELECT * FROM ${spec.batchTable} WHERE batch_id = $1`,
      [id],
    );
    if (!batch) return undefined;
    const [summary] = await this.db.cachedQuery(
      `SELECT ${summarySql(this.spec)} FROM ${spec.table} r WHERE r.batch_id = $1`,
      [id],
    );
    const records = await this.list({ batch_id: id }, page, { sort: 'created_at', order: 'asc' });
    return { ...batch, summary, ...records };
  }

  /** Per-model (or per-hardware) statistics. */
  async statsBy(column: 'model' | 'hardware', filters: Filters = {}) {
    const key = column === 'model' ? 'models' : 'hardware';
    const count = column === 'model' ? 'hardware_count' : 'model_count';
    if (unfiltered(filters)) {
      return {
        [key]: await this.stored(column, `${column}, ${count}`, '', `ORDER BY total DESC, ${column}`),
      };
    }
    const params: Params = [];
    const where = whereSql(this.spec, filters, params);
    const rows = await this.db.cachedQuery(
      `SELECT r.${column}, count(DISTINCT r.${column === 'model' ? 'hardware' : 'model'})::INTEGER AS ${count},
              ${summarySql(this.spec)}
       FROM ${this.spec.table} r ${where} GROUP BY r.${column} ORDER BY total DESC, r.${column}`,
      params,
    );
    return { [key]: rows };
  }

  /** Performance report: per model and hardware, and per day. */
  async performance(filters: Filters, days: number) {
    const m = this.spec.primaryMetric;
    const cutoffDay = Math.floor(Date.now() / 86_400_000 - days + 1);
    const dayLabel = (d: string) => `strftime(make_timestamp(${d} * 86400000000), '%Y-%m-%d') AS day`;
    if (unfiltered(filters)) {
      const [byModelHardware, daily] = await Promise.all([
        this.stored('model_hardware', 'model, hardware', `, min_${m}, max_${m}`, 'ORDER BY model, hardware'),
        this.stored('day', dayLabel('day'), '', `AND day >= ${cutoffDay} ORDER BY day`),
      ]);
      return { metric: m, by_model_hardware: byModelHardware, daily };
    }
    const params: Params = [];
    const where = whereSql(this.spec, filters, params);
    const byModelHardware = await this.db.cachedQuery(
      `SELECT r.model, r.hardware, ${summarySql(this.spec)}, min(r.${m}) AS min_${m}, max(r.${m}) AS max_${m}
       FROM ${this.spec.table} r ${where} GROUP BY r.model, r.hardware ORDER BY r.model, r.hardware`,
      params,
    );
    // Days as UTC epoch-day numbers: date_trunc on TIMESTAMPTZ goes through the time-zone
    // library per row and was 10× slower on a million rows.
    const dailyWhere = `${where ? `${where} AND` : 'WHERE'} ${DAY_SQL} >= ${cutoffDay}`;
    const daily = await this.db.cachedQuery(
      `SELECT ${dayLabel('d')}, * EXCLUDE (d) FROM (
         SELECT ${DAY_SQL} AS d, ${summarySql(this.spec)}
         FROM ${this.spec.table} r ${dailyWhere} GROUP BY 1
       ) ORDER BY d`,
      params,
    );
    return { metric: m, by_model_hardware: byModelHardware, daily };
  }

  /** What the gateway's unified model view shows for this domain. */
  async modelSummary(model: string, recent: number) {
    const [stored] = await this.stored('model', 'model', ', first_at', 'AND model = $1', [model]);
    if (stored) {
      const [byHardware, latest] = await Promise.all([
        this.stored('model_hardware', 'hardware', '', 'AND model = $1 ORDER BY total DESC, hardware', [
          model,
        ]),
        this.list({ model }, { limit: recent, offset: 0 }),
      ]);
      const { model: _, ...summary } = stored;
      return this.modelAnswer(model, summary, byHardware, latest[this.spec.records] as Row[]);
    }
    // No records of this model: an aggregate over no rows gives the zero counts and null averages.
    const [summary] = await this.db.cachedQuery(
      `SELECT ${summarySql(this.spec)}, min(coalesce(r.started_at, r.created_at)) AS first_at FROM ${this.spec.table} r WHERE false`,
    );
    return this.modelAnswer(model, summary, [], []);
  }

  private modelAnswer(model: string, summary: Row | undefined, byHardware: Row[], recent: Row[]) {
    return {
      model,
      domain: this.spec.name,
      ...summary,
      by_hardware: byHardware,
      [`recent_${this.spec.records}`]: recent,
    };
  }

  /** Figures for the gateway overview. */
  async stats() {
    const t = this.spec.table;
    const [[stored], [groups], byStatus, [batches], [recent]] = await Promise.all([
      this.stored('all', "'all' AS grouping"),
      // Distinct models and hardware are the stored groups (a NULL hardware is no platform).
      this.db.cachedQuery(
        `SELECT count(model) FILTER (WHERE grouping = 'model')::INTEGER AS models,
                count(hardware) FILTER (WHERE grouping = 'hardware')::INTEGER AS hardware_platforms
         FROM ${summaryTable(this.spec)}`,
      ),
      this.db.cachedQuery<{ status: string; n: number }>(
        `SELECT status, count(*)::INTEGER AS n FROM ${t} GROUP BY status ORDER BY status`,
      ),
      this.db.cachedQuery<{ n: number }>(`SELECT count(*)::INTEGER AS n FROM ${this.spec.batchTable}`),
      // Changes with the clock, not only with the data: never cached.
      this.db.query(
        `SELECT count(*)::INTEGER AS last_24h FROM ${t} WHERE created_at >= now() - INTERVAL 1 DAY`,
      ),
    ]);
    // No records, no stored group: the aggregate over no rows gives the zero counts.
    const { grouping: _, ...totals } =
      stored ?? (await this.db.cachedQuery(`SELECT ${summarySql(this.spec)} FROM ${t} r WHERE false`))[0]!;
    return {
      domain: this.spec.name,
      [`total_${this.spec.records}`]: totals?.total ?? 0,
      total_batches: batches?.n ?? 0,
      by_status: Object.fromEntries(byStatus.map((s) => [s.status, s.n])),
      ...totals,
      ...groups,
      ...recent,
    };
  }
}

/** Lists come back with NULL for records without tags; the API always says []. */
function withTags(row: Row): Row {
  return { ...row, tags: row.tags ?? [] };
}
