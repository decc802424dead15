import { open } from 'node:fs/promises';
import { type ChildTable, type DomainSpec, recordColumns } from '../domain/domains';
import {
  BadCsv,
  type FileFormat,
  LoadRejected,
  type LoadResult,
  MAX_LINE_BYTES,
  MAX_TEXT,
  type ReceivedLines,
  type Rejected,
  UnknownColumns,
} from '../domain/loading';
import type { WriteTx } from './duck';

/**
 * Loads records from a file on disk (NDJSON or CSV) into a domain's tables inside the caller's
 * write transaction. DuckDB reads, types and checks the rows itself (no row passes through
 * JavaScript), so a million rows load in seconds. Every row gets a verdict: loaded, or
 * rejected with its line and reason.
 */

/** Plain RFC 4180 CSV with a header; stated, not sniffed, so one odd row cannot change the reading. */
const CSV_DIALECT = `header = true, auto_detect = false, delim = ',', quote = '"', escape = '"', new_line = '\\n'`;
const MAX_TAGS = 64;

/** Single quotes a literal we generated ourselves (file paths, never client text). */
const lit = (s: string) => `'${s.replaceAll("'", "''")}'`;

function nestedKeys(spec: DomainSpec): string[] {
  return ['tags', ...spec.children.map((c) => c.key)];
}

/** The names a record may carry (for unknown-column checks). */
export function allowedKeys(spec: DomainSpec): Set<string> {
  return new Set([...recordColumns(spec).map((c) => c.name), ...nestedKeys(spec)]);
}

/** The DuckDB type of a child part: one STRUCT, or a list of them. */
function childType(child: ChildTable): string {
  const struct = `STRUCT(${child.columns.map((c) => `"${c.name}" ${c.type}`).join(', ')})`;
  return child.single ? struct : `${struct}[]`;
}

/**
 * Stage 1: `load_stage`, every field as text plus nested parts as JSON, with the file line.
 * Clean NDJSON is read by read_json; if that fails (a malformed line), the file is read line by
 * line so the bad lines can be named. CSV is read as text with DuckDB's reject store.
 */
let loads = 0;

/** A body the loader numbers itself (ReceivedLines.plain is false). */
class NotPlain extends Error {}

/** The temp tables of one load (connection-local, dropped by `dropStage`). */
export interface Staged {
  stage: string;
  checked: string;
  /** Rows refused before they reached a table: malformed CSV, and lines the receiver blanked. */
  rejects: Rejected[];
}

/**
 * Stage 1, outside any transaction (a failed statement would abort it, and the NDJSON fast path
 * is allowed to fail): the file lands in a temp table with every field as text.
 */
export async function stageFile(
  tx: WriteTx,
  spec: DomainSpec,
  file: string,
  format: FileFormat,
  received: ReceivedLines = { refused: [], plain: true },
): Promise<Staged> {
  const n = ++loads;
  const staged = { stage: `load_stage_${n}`, checked: `load_checked_${n}`, rejects: [...received.refused] };
  staged.rejects.push(...(await stage(tx, spec, file, format, staged.stage, received.plain)));
  return staged;
}

export async function dropStage(tx: WriteTx, s: Staged): Promise<void> {
  await tx.run(`DROP TABLE IF EXISTS ${s.stage}`);
  await tx.run(`DROP TABLE IF EXISTS ${s.checked}`);
  await tx.run(`DROP TABLE IF EXISTS ${existingTable(s)}`);
}

const existingTable = (s: Staged) => `${s.checked}_existing`;

async function stage(
  tx: WriteTx,
  spec: DomainSpec,
  file: string,
  format: FileFormat,
  table: string,
  plain: boolean,
): Promise<Rejected[]> {
  const scalars = recordColumns(spec).map((c) => c.name);
  const nested = nestedKeys(spec);
  if (format === 'csv') return stageCsv(tx, spec, file, table);

  const columns = [...scalars.map((n) => `"${n}": 'VARCHAR'`), ...nested.map((n) => `"${n}": 'JSON'`)].join(
    ', ',
  );
  const allowed = allowedKeys(spec);
  try {
    // Keys outside the schema, judged on DuckDB's sample of the file (its first 20,480 lines).
    const seen = await tx.query<{ column_name: string }>(
      `DESCRIBE SELECT * FROM read_json(${lit(file)}, format = 'newline_delimited', maximum_object_size = ${MAX_LINE_BYTES})`,
    );
    const unknown = seen.map((c) => c.column_name).filter((n) => !allowed.has(n));
    if (unknown.length > 0) throw new UnknownColumns(unknown);
    // A blank line between records, a blanked one, or one not starting with `{`: read_json
    // would skip it or fail, and the rows after it would not be numbered by their lines.
    if (!plain) throw new NotPlain();
    // The line is the row's place in the table, rowid + 1 (loadStaged): DuckDB keeps a file's
    // order in the table it creates (preserve_insertion_order, on by default). Numbering the rows
    // here with row_number() OVER () took as long again as parsing the file (1.6 → 3.0 s at 1M).
    await tx.run(
      `CREATE TEMP TABLE ${table} AS SELECT NULL::BIGINT AS line_no, true AS parsed, NULL::VARCHAR[] AS extra, *
       FROM read_json(${lit(file)}, format = 'newline_delimited', columns = {${columns}}, maximum_object_size = ${MAX_LINE_BYTES})`,
    );
    return [];
  } catch (err) {
    if (err instanceof UnknownColumns) throw err;
    // Not clean: name the lines. Blank lines keep their numbers here and are skipped below.
  }
  const paths = (names: string[]) => `[${names.map((n) => lit(`$."${n}"`)).join(', ')}]`;
  await tx.run(
    `CREATE TEMP TABLE ${table} AS
     WITH lines AS (
       SELECT row_number() OVER () AS line_no, line
       FROM read_csv(${lit(file)}, columns = {'line': 'VARCHAR'}, header = false, delim = '\\x1f', quote = '',
                     escape = '', auto_detect = false, new_line = '\\n', max_line_size = ${MAX_LINE_BYTES + 2})
     ), parsed AS (
       SELECT line_no, line,
              CASE WHEN json_valid(line) AND json_type(line) = 'OBJECT' THEN true ELSE false END AS parsed
       FROM lines WHERE line IS NOT NULL AND trim(line, ' ' || chr(9) || chr(13)) <> ''
     ), fields AS (
       SELECT line_no, parsed,
              CASE WHEN parsed THEN json_extract_string(line, ${paths(scalars)}) END AS s,
              CASE WHEN parsed THEN json_extract(line, ${paths(nested)}) END AS j,
              CASE WHEN parsed THEN list_filter(json_keys(line), k -> NOT list_contains([${[...allowed].map(lit).join(', ')}], k)) END AS extra
       FROM parsed
     )
     SELECT line_no, parsed AND coalesce(len(extra), 0) = 0 AS parsed, extra, ${scalars.map((n, i) => `s[${i + 1}] AS "${n}"`).join(', ')},
            ${nested.map((n, i) => `j[${i + 1}] AS "${n}"`).join(', ')}
     FROM fields`,
  );
  return [];
}

async function stageCsv(tx: WriteTx, spec: DomainSpec, file: string, table: string): Promise<Rejected[]> {
  const header = await readHeader(file);
  const present = new Set(header);
  const allowed = new Set([...recordColumns(spec).map((c) => c.name), 'tags']);
  const unknown = [...present].filter((n) => !allowed.has(n));
  if (unknown.length > 0) throw new UnknownColumns(unknown);
  // DuckDB's own complaints about the file (a broken quote, a wrong row) are the client's.
  await tx
    .run(
      `CREATE TEMP TABLE ${table} AS
     SELECT row_number() OVER () + 1 AS line_no, true AS parsed, NULL::VARCHAR[] AS extra,
            ${recordColumns(spec)
              .map((c) => (present.has(c.name) ? `"${c.name}"` : `NULL::VARCHAR AS "${c.name}"`))
              .join(', ')},
            ${present.has('tags') ? `CASE WHEN tags IS NULL OR tags = '' THEN NULL ELSE to_json(string_split(tags, ';')) END` : 'NULL::JSON'} AS tags,
            ${spec.children.map((c) => `NULL::JSON AS "${c.key}"`).join(', ')}
     FROM read_csv(${lit(file)}, ${CSV_DIALECT}, columns = {${header.map((h) => `${lit(h)}: 'VARCHAR'`).join(', ')}}, store_rejects = true,
                   rejects_table = '${table}_rejects', rejects_scan = '${table}_scans')`,
    )
    .catch((err: unknown) => {
      throw new BadCsv(`the CSV could not be read: ${(err as Error).message.split('\n')[0]}`);
    });
  const bad = await tx.query<{ line: number; error_message: string }>(
    `SELECT line, min(error_message) AS error_message FROM ${table}_rejects GROUP BY line ORDER BY line`,
  );
  if (bad.length > 0) {
    // Staged rows were numbered as if no row had been skipped: renumber them around the rejects.
    const skipped = bad.map((b) => Number(b.line)).join(', ');
    await tx.run(
      `UPDATE ${table} SET line_no = m.line FROM (
         SELECT row_number() OVER (ORDER BY range) AS k, range AS line
         FROM range(2, (SELECT count(*) FROM ${table}) + ${bad.length} + 2) WHERE range NOT IN (${skipped})
       ) m WHERE ${table}.line_no - 1 = m.k`,
    );
  }
  await tx.run(`DROP TABLE IF EXISTS ${table}_rejects`);
  await tx.run(`DROP TABLE IF EXISTS ${table}_scans`);
  return bad.map((b) => ({
    line: Number(b.line),
    id: null,
    reason: `malformed CSV row: ${b.error_message}`,
  }));
}

/** The header line's names. Real column names are plain identifiers, so a simple split is exact for them. */
async function readHeader(file: string): Promise<string[]> {
  const handle = await open(file, 'r');
  try {
    const buf = Buffer.alloc(64 * 1024);
    const { bytesRead } = await handle.read(buf, 0, buf.length, 0);
    const line = buf.subarray(0, bytesRead).toString('utf8').split('\n')[0]!.replace(/\r$/, '');
    const names = line.split(',').map((n) => n.trim().replace(/^"(.*)"$/, '$1'));
    if (line.trim() === '' || names.some((n) => n === '')) throw new UnknownColumns(['(empty header)']);
    const twice = names.find((n, i) => names.indexOf(n) !== i);
    if (twice !== undefined) throw new BadCsv(`the CSV header names "${twice}" twice`);
    return names;
  } finally {
    await handle.close();
  }
}

/** A SQL expression giving the first reason a staged row is invalid, or NULL. */
function reasonSql(spec: DomainSpec, stage: string, existing: string): string {
  const checks: string[] = [
    "WHEN NOT parsed AND len(extra) > 0 THEN 'unknown fields: ' || array_to_string(extra, ', ')",
    "WHEN NOT parsed THEN 'not a JSON object'",
  ];
  for (const c of recordColumns(spec)) {
    const col = `"${c.name}"`;
    if (c.required) checks.push(`WHEN ${col} IS NULL OR ${col} = '' THEN '${c.name} is required'`);
    if (c.type === 'VARCHAR') {
      checks.push(`WHEN length(${col}) > ${MAX_TEXT} THEN '${c.name} is longer than ${MAX_TEXT} characters'`);
    } else {
      checks.push(
        `WHEN ${col} IS NOT NULL AND try_cast(${col} AS ${c.type}) IS NULL THEN '${c.name}: not a valid ${c.type.toLowerCase()}'`,
      );
    }
    if (c.type === 'TIMESTAMPTZ') {
      // As JSON ingest (routes/schemas.ts): no infinity, BC or five-digit years, which have no day.
      checks.push(
        `WHEN ${col} IS NOT NULL AND NOT coalesce(try_cast(${col} AS TIMESTAMPTZ) BETWEEN TIMESTAMPTZ '0001-01-01 00:00:00+00' AND TIMESTAMPTZ '9999-12-31 23:59:59.999999+00', false) THEN '${c.name}: a time from year 0001 to 9999 in UTC'`,
      );
    }
    if (c.type === 'DOUBLE') {
      checks.push(
        `WHEN isinf(try_cast(${col} AS DOUBLE)) OR isnan(try_cast(${col} AS DOUBLE)) THEN '${c.name} must be finite'`,
      );
    }
  }
  // The same id and tag rules as the JSON API (routes/schemas.ts), so every record loaded in
  // bulk can be addressed, and deleted, by id.
  for (const col of [spec.idColumn, 'batch_id'])
    checks.push(
      `WHEN "${col}" IS NOT NULL AND NOT regexp_full_match("${col}", '[A-Za-z0-9_.:@/+-]{1,200}') THEN '${col}: 1-200 letters, digits and . _ : @ / + - only'`,
    );
  checks.push(
    `WHEN tags IS NOT NULL AND NOT coalesce(list_bool_and(list_transform(json_extract(tags, '$[*]'), x -> json_type(x) = 'VARCHAR')), true)
       THEN 'tags must be a list of strings'`,
  );
  checks.push(
    `WHEN tags IS NOT NULL AND try_cast(tags AS VARCHAR[]) IS NOT NULL AND len(list_filter(try_cast(tags AS VARCHAR[]), t -> t IS NULL OR length(t) < 1 OR length(t) > 200)) > 0
       THEN 'tags must be strings of 1-200 characters'`,
  );
  const statuses = spec.statuses.map((s) => `'${s}'`).join(', ');
  checks.push(`WHEN status NOT IN (${statuses}) THEN 'status must be one of ${spec.statuses.join(', ')}'`);
  checks.push(
    `WHEN tags IS NOT NULL AND (try_cast(tags AS VARCHAR[]) IS NULL OR len(try_cast(tags AS VARCHAR[])) > ${MAX_TAGS})
       THEN 'tags must be a list of at most ${MAX_TAGS} strings'`,
  );
  for (const child of spec.children) {
    const type = childType(child);
    const required = child.columns.filter((c) => c.required).map((c) => c.name);
    checks.push(
      `WHEN "${child.key}" IS NOT NULL AND try_cast("${child.key}" AS ${type}) IS NULL THEN '${child.key} does not have the documented shape'`,
    );
    if (required.length > 0 && !child.single) {
      const missing = required.map((r) => `x."${r}" IS NULL`).join(' OR ');
      checks.push(
        `WHEN "${child.key}" IS NOT NULL AND len(list_filter(try_cast("${child.key}" AS ${type}), x -> ${missing})) > 0
           THEN '${child.key}: every entry needs ${required.join(', ')}'`,
      );
    }
  }
  const id = spec.idColumn;
  checks.push(
    // A hash aggregate: a window count per id sorted every id of the load (twice as slow).
    `WHEN "${id}" IN (SELECT "${id}" FROM ${stage} WHERE "${id}" IS NOT NULL GROUP BY "${id}" HAVING count(*) > 1) THEN '${id} appears more than once in this load'`,
  );
  checks.push(`WHEN "${id}" IN (SELECT ${id} FROM ${existing}) THEN '${id} already exists'`);
  return `CASE ${checks.join('\n')} END`;
}

/**
 * Loads `file`; rows with a reason are left out and reported. With `strict`, any rejected row
 * means nothing is loaded (the caller's transaction is rolled back by throwing LoadRejected).
 */
export async function loadStaged(
  tx: WriteTx,
  spec: DomainSpec,
  staged: Staged,
  options: { strict: boolean; maxReported: number; batchId?: string },
): Promise<LoadResult> {
  const { rejects, stage: load_stage, checked: load_checked } = staged;
  const id = spec.idColumn;
  const cols = recordColumns(spec);
  // Ids of this load that are already stored. Asked this way round (the stored ids probed
  // against the load's), a one-record load into a million rows takes milliseconds, where
  // "EXISTS (… stored …)" per row hashed every stored id first (70 ms).
  const existing = existingTable(staged);
  await tx.run(
    `CREATE OR REPLACE TEMP TABLE ${existing} AS SELECT m.${id} FROM ${spec.table} m
     SEMI JOIN (SELECT DISTINCT "${id}" AS ${id} FROM ${load_stage} WHERE "${id}" IS NOT NULL) s USING (${id})`,
  );
  await tx.run(
    `CREATE TEMP TABLE ${load_checked} AS
     SELECT coalesce(line_no, rowid + 1) AS line_no, ${reasonSql(spec, load_stage, existing)} AS reason, "${id}" AS given_id,
            coalesce("${id}", uuid()::VARCHAR) AS "${id}",
            ${cols
              .filter((c) => c.name !== id)
              .map((c) =>
                c.name === 'batch_id' && options.batchId !== undefined
                  ? `${lit(options.batchId)} AS batch_id`
                  : `try_cast("${c.name}" AS ${c.type}) AS "${c.name}"`,
              )
              .join(', ')},
            try_cast(tags AS VARCHAR[]) AS tags,
            ${spec.children.map((c) => `try_cast("${c.key}" AS ${childType(c)}) AS "${c.key}"`).join(', ')}
     FROM ${load_stage}`,
  );

  const [counts] = await tx.query<{ accepted: number; rejected: number }>(
    `SELECT count(*) FILTER (WHERE reason IS NULL) AS accepted, count(*) FILTER (WHERE reason IS NOT NULL) AS rejected FROM ${load_checked}`,
  );
  const rowErrors = await tx.query<Rejected>(
    `SELECT line_no AS line, given_id AS id, reason
     FROM ${load_checked} WHERE reason IS NOT NULL ORDER BY line_no LIMIT ${options.maxReported}`,
  );
  const errors = [...rejects, ...rowErrors].sort((a, b) => a.line - b.line).slice(0, options.maxReported);
  const result: LoadResult = {
    accepted: counts?.accepted ?? 0,
    rejected: (counts?.rejected ?? 0) + rejects.length,
    errors,
    ids: [],
    batch_ids: [],
  };
  if (options.strict && result.rejected > 0) throw new LoadRejected(result);

  if (result.accepted > 0) {
    const names = cols.map((c) => `"${c.name}"`).join(', ');
    await tx.run(
      `INSERT INTO ${spec.table} (${names}) SELECT ${names} FROM ${load_checked} WHERE reason IS NULL`,
    );
    await tx.run(
      `INSERT INTO ${spec.tagsTable} (${id}, tag)
       SELECT "${id}", unnest(list_distinct(tags)) FROM ${load_checked} WHERE reason IS NULL AND tags IS NOT NULL`,
    );
    for (const child of spec.children) {
      const fields = child.columns.map((c) => `"${c.name}"`).join(', ');
      const source = child.single
        ? `SELECT "${id}", "${child.key}".* FROM ${load_checked} WHERE reason IS NULL AND "${child.key}" IS NOT NULL`
        : `SELECT "${id}", unnest("${child.key}", recursive := true) FROM ${load_checked} WHERE reason IS NULL AND len("${child.key}") > 0`;
      await tx.run(`INSERT INTO ${child.table} (${id}, ${fields}) ${source}`);
    }
    if (result.accepted <= 100) {
      const rows = await tx.query<{ id: string }>(
        `SELECT "${id}" AS id FROM ${load_checked} WHERE reason IS NULL ORDER BY line_no`,
      );
      result.ids = rows.map((r) => r.id);
    }
    const batches = await tx.query<{ b: string }>(
      `SELECT DISTINCT batch_id AS b FROM ${load_checked} WHERE reason IS NULL AND batch_id IS NOT NULL LIMIT 100`,
    );
    result.batch_ids = batches.map((r) => r.b);
  }
  return result;
}
