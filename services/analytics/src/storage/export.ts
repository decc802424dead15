import { createReadStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { DomainSpec } from '../domain/domains';
import type { Filters } from '../domain/filters';
import type { DuckDb, Params } from './duck';
import { whereSql } from './where-sql';

export type ExportFormat = 'json' | 'csv' | 'parquet';

export const CONTENT_TYPES: Record<ExportFormat, string> = {
  json: 'application/json',
  csv: 'text/csv; charset=utf-8',
  parquet: 'application/vnd.apache.parquet',
};

/** Every table of the domain, main table first. */
export function domainTables(spec: DomainSpec): string[] {
  return [spec.table, spec.batchTable, spec.tagsTable, ...spec.children.map((c) => c.table)];
}

const COPY_OPTIONS: Record<ExportFormat, string> = {
  json: "(FORMAT json, ARRAY true, DATE_FORMAT '%Y-%m-%d', TIMESTAMP_FORMAT '%Y-%m-%dT%H:%M:%S.%fZ')",
  csv: '(FORMAT csv, HEADER true)',
  parquet: '(FORMAT parquet, COMPRESSION zstd)',
};

/**
 * DuckDB writes the export to a temp file (COPY streams inside DuckDB; no rows pass through
 * JavaScript), then the file streams to the client and is removed.
 */
export class Exporter {
  constructor(
    private readonly db: DuckDb,
    private readonly spec: DomainSpec,
    private readonly tempFile: (ext: string) => string,
  ) {}

  /**
   * CSV opened in a spreadsheet runs a cell that starts with = + - @, a tab or a carriage
   * return as a formula (OWASP "CSV Injection"): such text cells get a leading ' as OWASP
   * advises. `raw` exports the cells as stored, for programs rather than spreadsheets.
   */
  private async guardFormulas(sql: string, params: Params): Promise<string> {
    const columns = await this.db.query<{ column_name: string; column_type: string }>(
      `DESCRIBE ${sql}`,
      params,
    );
    const cells = columns.map(({ column_name: c, column_type: t }) => {
      const name = `"${c.replace(/"/g, '""')}"`;
      return t === 'VARCHAR'
        ? `CASE WHEN regexp_matches(${name}, '^[=+@\\t\\r-]') THEN '''' || ${name} ELSE ${name} END AS ${name}`
        : name;
    });
    return `SELECT ${cells.join(', ')} FROM (${sql})`;
  }

  private async copy(sql: string, params: Params, format: ExportFormat, raw = false): Promise<string> {
    const file = this.tempFile(format);
    try {
      const select = format === 'csv' && !raw ? await this.guardFormulas(sql, params) : sql;
      await this.db.query(`COPY (${select}) TO '${file}' ${COPY_OPTIONS[format]}`, params);
    } catch (err) {
      await rm(file, { force: true });
      throw err;
    }
    return file;
  }

  /** One table (the main one filtered by `filters`) in any format; see guardFormulas for `raw`. */
  async table(
    table: string,
    format: ExportFormat,
    filters: Filters,
    out: Writable,
    raw = false,
  ): Promise<void> {
    const params: Params = [];
    const sql =
      table === this.spec.table
        ? `SELECT * FROM ${table} r ${whereSql(this.spec, filters, params)} ORDER BY r.created_at, r.${this.spec.idColumn}`
        : `SELECT * FROM ${table}`;
    const file = await this.copy(sql, params, format, raw);
    try {
      await pipeline(createReadStream(file), out);
    } finally {
      await rm(file, { force: true });
    }
  }

  /** The seed's "export database to JSON": one object with every table as an array. */
  async wholeDatabase(out: Writable): Promise<void> {
    const tables = domainTables(this.spec);
    const files: string[] = [];
    try {
      for (const t of tables) files.push(await this.copy(`SELECT * FROM ${t}`, [], 'json'));
      // One generator feeds one pipeline, so the response gets a single set of listeners.
      const spec = this.spec;
      await pipeline(async function* () {
        yield `{"domain":"${spec.name}","exported_at":"${new Date().toISOString()}"`;
        for (const [i, t] of tables.entries()) {
          yield `,"${t}":`;
          yield* createReadStream(files[i]!);
        }
        yield '}\n';
      }, out);
    } finally {
      await Promise.all(files.map((f) => rm(f, { force: true })));
    }
  }
}
