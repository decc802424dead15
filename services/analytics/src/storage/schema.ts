import { BATCH_STATUSES, batchColumns, type Column, type DomainSpec, recordColumns } from '../domain/domains';
import type { DuckDb } from './duck';

export const OUTBOX = 'event_outbox';

function columnDdl(c: Column): string {
  return `${c.name} ${c.type}${c.required ? ' NOT NULL' : ''}`;
}

/**
 * Version 1 of a domain's schema. Record ids are unique by the service's own check (one writer
 * owns the file): a PRIMARY KEY index made bulk loads 2.5× slower here and buys nothing more.
 */
function schemaV1(spec: DomainSpec): string[] {
  const id = spec.idColumn;
  const main = recordColumns(spec).map((c) => (c.name === id ? `${id} VARCHAR NOT NULL` : columnDdl(c)));
  const statements = [
    `CREATE TABLE ${spec.table} (${main.join(', ')}, created_at TIMESTAMPTZ NOT NULL DEFAULT now())`,
    `CREATE TABLE ${spec.tagsTable} (${id} VARCHAR NOT NULL, tag VARCHAR NOT NULL)`,
    `CREATE TABLE ${spec.batchTable} (batch_id VARCHAR NOT NULL, ${batchColumns.map(columnDdl).join(', ')},
       created_at TIMESTAMPTZ NOT NULL DEFAULT now(), updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
       CHECK (status IN (${BATCH_STATUSES.map((s) => `'${s}'`).join(', ')})))`,
    `CREATE SEQUENCE ${OUTBOX}_seq`,
    `CREATE TABLE ${OUTBOX} (seq BIGINT NOT NULL DEFAULT nextval('${OUTBOX}_seq'), event_id VARCHAR NOT NULL,
       topic VARCHAR NOT NULL, payload VARCHAR NOT NULL, created_at TIMESTAMPTZ NOT NULL DEFAULT now())`,
  ];
  for (const child of spec.children) {
    statements.push(
      `CREATE TABLE ${child.table} (${id} VARCHAR NOT NULL, ${child.columns.map(columnDdl).join(', ')})`,
    );
  }
  return statements;
}

const MIGRATIONS: ((spec: DomainSpec) => string[])[] = [schemaV1];

/** Brings the file to the newest schema, one version per transaction, and records each version. */
export async function migrate(db: DuckDb, spec: DomainSpec): Promise<number> {
  await db.exclusive((tx) =>
    tx.run(
      'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER NOT NULL, domain VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())',
    ),
  );
  const [row] = await db.query<{ v: number | null; domains: string | null }>(
    `SELECT max(version) AS v, string_agg(DISTINCT domain, ',') AS domains FROM schema_migrations`,
  );
  if (row?.domains && row.domains !== spec.name) {
    throw new Error(`this DuckDB file belongs to the ${row.domains} domain, not ${spec.name}`);
  }
  const current = row?.v ?? 0;
  for (let version = current + 1; version <= MIGRATIONS.length; version++) {
    await db.write(async (tx) => {
      for (const sql of MIGRATIONS[version - 1]!(spec)) await tx.run(sql);
      await tx.run('INSERT INTO schema_migrations (version, domain) VALUES ($1, $2)', [version, spec.name]);
    });
  }
  return MIGRATIONS.length;
}
