import type { DuckDb, Params, Row } from '../storage/duck';
import type { DomainSpec } from './domains';
import { type Filters, whereSql } from './filters';

/**
 * Read side of a domain. Every aggregate runs inside DuckDB and only the result crosses into
 * JavaScript; pages are capped by the route schemas.
 */
export class DomainQueries {
  constructor(
    private readonly db: DuckDb,
    readonly spec: DomainSpec,
  ) {}

  private get success(): string {
    return `r.status IN (${this.spec.successStatuses.map((s) => `'${s}'`).join(', ')})`;
  }

  /** count, success rate and metric averages, for GROUP BY queries over alias r. */
  private summarySql(): string {
    const m = this.spec.primaryMetric;
    return [
      'count(*)::INTEGER AS total',
      `count(*) FILTER (WHERE ${this.success})::INTEGER AS succeeded`,
      `count(*) FILTER (WHERE r.status IN ('failed', 'error'))::INTEGER AS failed`,
      `round(count(*) FILTER (WHERE ${this.success}) / count(*), 4) AS success_rate`,
      `avg(r.${m}) AS avg_${m}`,
      `quantile_cont(r.${m}, 0.95) AS p95_${m}`,
      ...this.spec.summaryMetrics.map((s) => `avg(r.${s}) AS avg_${s}`),
      'max(coalesce(r.started_at, r.created_at)) AS last_at',
    ].join(', ');
  }

  async list(
    filters: Filters,
    page: { limit: number; offset: number },
    sort = { sort: 'created_at', order: 'desc' },
  ) {
    const params: Params = [];
    const where = whereSql(this.spec, filters, params);
    const t = this.spec.table;
    // One scan: the page is cut from the filtered rows, and the window counts them on the way.
    const rows = await this.db.cachedQuery(
      `WITH page AS (
         SELECT r.*, count(*) OVER () AS total_rows FROM ${t} r ${where}
         ORDER BY r.${sort.sort} ${sort.order === 'asc' ? 'ASC' : 'DESC'} NULLS LAST, r.${this.spec.idColumn}
         LIMIT ${page.limit} OFFSET ${page.offset}
       )
       SELECT p.*, (SELECT list(tag ORDER BY tag) FROM ${this.spec.tagsTable} g WHERE g.${this.spec.idColumn} = p.${this.spec.idColumn}) AS tags
       FROM page p ORDER BY p.${sort.sort} ${sort.order === 'asc' ? 'ASC' : 'DESC'} NULLS LAST, p.${this.spec.idColumn}`,
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
       LEFT JOIN (SELECT r.batch_id, count(*)::INTEGER AS total, count(*) FILTER (WHERE ${this.success})::INTEGER AS succeeded
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
      `SELECT ${this.summarySql()} FROM ${spec.table} r WHERE r.batch_id = $1`,
      [id],
    );
    const records = await this.list({ batch_id: id }, page, { sort: 'created_at', order: 'asc' });
    return { ...batch, summary, ...records };
  }

  /** Per-model (or per-hardware) statistics. */
  async statsBy(column: 'model' | 'hardware', filters: Filters = {}) {
    const params: Params = [];
    const where = whereSql(this.spec, filters, params);
    const rows = await this.db.cachedQuery(
      `SELECT r.${column}, count(DISTINCT r.${column === 'model' ? 'hardware' : 'model'})::INTEGER AS ${column === 'model' ? 'hardware_count' : 'model_count'},
              ${this.summarySql()}
       FROM ${this.spec.table} r ${where} GROUP BY r.${column} ORDER BY total DESC, r.${column}`,
      params,
    );
    return { [column === 'model' ? 'models' : 'hardware']: rows };
  }

  /** Performance report: per model and hardware, and per day. */
  async performance(filters: Filters, days: number) {
    const params: Params = [];
    const where = whereSql(this.spec, filters, params);
    const m = this.spec.primaryMetric;
    const byModelHardware = await this.db.cachedQuery(
      `SELECT r.model, r.hardware, ${this.summarySql()}, min(r.${m}) AS min_${m}, max(r.${m}) AS max_${m}
       FROM ${this.spec.table} r ${where} GROUP BY r.model, r.hardware ORDER BY r.model, r.hardware`,
      params,
    );
    // Days as UTC epoch-day numbers: date_trunc on TIMESTAMPTZ goes through the time-zone
    // library per row and was 10× slower on a million rows.
    const cutoff = Math.floor(Date.now() / 86_400_000 - days + 1) * 86_400_000;
    const dailyWhere = `${where ? `${where} AND` : 'WHERE'} epoch_ms(coalesce(r.started_at, r.created_at)) >= ${cutoff}`;
    const daily = await this.db.cachedQuery(
      `SELECT strftime(make_timestamp(d * 86400000000), '%Y-%m-%d') AS day, * EXCLUDE (d) FROM (
         SELECT epoch_ms(coalesce(r.started_at, r.created_at)) // 86400000 AS d, ${this.summarySql()}
         FROM ${this.spec.table} r ${dailyWhere} GROUP BY 1
       ) ORDER BY d`,
      params,
    );
    return { metric: m, by_model_hardware: byModelHardware, daily };
  }

  /** What the gateway's unified model view shows for this domain. */
  async modelSummary(model: string, recent: number) {
    const [summary] = await this.db.cachedQuery(
      `SELECT ${this.summarySql()}, min(coalesce(r.started_at, r.created_at)) AS first_at FROM ${this.spec.table} r WHERE r.model = $1`,
      [model],
    );
    const byHardware = await this.db.cachedQuery(
      `SELECT r.hardware, ${this.summarySql()} FROM ${this.spec.table} r WHERE r.model = $1 GROUP BY r.hardware ORDER BY total DESC`,
      [model],
    );
    const latest = await this.list({ model }, { limit: recent, offset: 0 });
    return {
      model,
      domain: this.spec.name,
      ...summary,
      by_hardware: byHardware,
      [`recent_${this.spec.records}`]: latest[this.spec.records],
    };
  }

  /** Figures for the gateway overview. */
  async stats() {
    const t = this.spec.table;
    const [totals] = await this.db.cachedQuery(
      `SELECT ${this.summarySql()}, count(DISTINCT r.model)::INTEGER AS models, count(DISTINCT r.hardware)::INTEGER AS hardware_platforms,
              count(*) FILTER (WHERE r.created_at >= now() - INTERVAL 1 DAY)::INTEGER AS last_24h
       FROM ${t} r`,
    );
    const byStatus = await this.db.cachedQuery<{ status: string; n: number }>(
      `SELECT status, count(*)::INTEGER AS n FROM ${t} GROUP BY status ORDER BY status`,
    );
    const [batches] = await this.db.cachedQuery<{ n: number }>(
      `SELECT count(*)::INTEGER AS n FROM ${this.spec.batchTable}`,
    );
    return {
      domain: this.spec.name,
      [`total_${this.spec.records}`]: totals?.total ?? 0,
      total_batches: batches?.n ?? 0,
      by_status: Object.fromEntries(byStatus.map((s) => [s.status, s.n])),
      ...totals,
    };
  }
}

/** Lists come back with NULL for records without tags; the API always says []. */
function withTags(row: Row): Row {
  return { ...row, tags: row.tags ?? [] };
}
