import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { DOMAINS, type DomainName } from './domain/domains';
import { Exporter } from './domain/export';
import { DomainQueries } from './domain/queries';
import { rebuildSummaries } from './domain/summaries';
import { DomainWrites } from './domain/writes';
import { DuckDb } from './storage/duck';
import { duckOutboxSource } from './storage/outbox-source';
import { migrate } from './storage/schema';

export interface DomainOptions {
  domain: DomainName;
  dbPath: string;
  queryTimeoutMs: number;
  threads?: number;
}

/**
 * Opens (and migrates) a domain's DuckDB file and builds its read and write sides. Load and
 * export temp files live next to the database, so they share its disk and never cross devices.
 */
export async function openDomain(options: DomainOptions, onEvent: () => void = () => undefined) {
  const spec = DOMAINS[options.domain];
  const tmpDir = path.join(path.dirname(path.resolve(options.dbPath)), `${options.domain}.tmp`);
  await rm(tmpDir, { recursive: true, force: true });
  await mkdir(tmpDir, { recursive: true });
  const db = await DuckDb.open(options.dbPath, {
    queryTimeoutMs: options.queryTimeoutMs,
    threads: options.threads,
  });
  try {
    await migrate(db, spec);
    await rebuildSummaries(db, spec);
  } catch (err) {
    db.close();
    throw err;
  }
  const writes = new DomainWrites(db, spec, tmpDir, onEvent);
  return {
    db,
    spec,
    queries: new DomainQueries(db, spec),
    writes,
    exporter: new Exporter(db, spec, (ext) => writes.tempFile(ext)),
    outbox: duckOutboxSource(db),
  };
}
