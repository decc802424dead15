import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { type BlobStore, openBlobStore } from '@qlab/blob-store';
import { privateDir, privateFiles } from '@qlab/kit';
import { DOMAINS, type DomainName } from './domain/domains';
import { DomainQueries } from './storage/domain-queries';
import { DomainWrites } from './storage/domain-writes';
import { DuckDb } from './storage/duck';
import { Exporter } from './storage/export';
import { LakeExporter } from './storage/lake-export';
import { duckOutboxSource } from './storage/outbox-source';
import { migrate } from './storage/schema';
import { rebuildSummaries } from './storage/summaries';

export interface DomainOptions {
  domain: DomainName;
  dbPath: string;
  /** The service's data folder (absent in tests that open a file directly). */
  dataDir?: string;
  queryTimeoutMs: number;
  threads?: number;
  /** DuckDB memory_limit (default: DuckDB's own, 80 % of RAM). */
  memoryLimit?: string;
  /** Where the lake export writes: a store, or its URL; default files under dataDir (else beside the database file). */
  blobStore?: BlobStore;
  blobStoreUrl?: string;
  /** How long a lake export's table COPY may take. Default 10 min. */
  loadTimeoutMs?: number;
}

/**
 * Where load and export temp files go: next to the database, so they share its disk and never
 * cross devices. In the data folder that is `<domain>.tmp`; beside a file given by path it is
 * `<file>.qlab-tmp`, a name nobody else's folder has (it is emptied at every start).
 */
export function tempDirFor(dbPath: string, domain: DomainName, dataDir?: string): string {
  if (dbPath === ':memory:') return path.join(tmpdir(), `qlab-analytics-${domain}-${process.pid}`);
  if (inDataDir(dbPath, dataDir)) return path.join(path.dirname(dbPath), `${domain}.tmp`);
  return `${dbPath}.qlab-tmp`;
}

/** Is the file in our own data folder (the default), rather than one the operator named elsewhere? */
const inDataDir = (dbPath: string, dataDir: string | undefined) =>
  dataDir !== undefined && path.resolve(path.dirname(dbPath)) === path.resolve(dataDir);

/**
 * Makes the database's folder ready. Our own data folder is made private (0700, its file 0600),
 * also when an older version left it open; a file the operator named elsewhere (seed 003's
 * --db-path) keeps its folder's permissions: only folders created here are 0700.
 */
export function prepareDbLocation(dbPath: string, dataDir: string): void {
  if (dbPath === ':memory:') return;
  if (inDataDir(dbPath, dataDir)) {
    privateDir(dataDir);
    privateFiles(dbPath, `${dbPath}.wal`);
  } else {
    mkdirSync(path.dirname(dbPath), { recursive: true, mode: 0o700 });
  }
}

/** Opens (and migrates) a domain's DuckDB file and builds its read and write sides. */
export async function openDomain(options: DomainOptions, onEvent: () => void = () => undefined) {
  const spec = DOMAINS[options.domain];
  const tmpDir = tempDirFor(options.dbPath, options.domain, options.dataDir);
  await rm(tmpDir, { recursive: true, force: true });
  await mkdir(tmpDir, { recursive: true, mode: 0o700 });
  const db = await DuckDb.open(options.dbPath, {
    queryTimeoutMs: options.queryTimeoutMs,
    threads: options.threads,
    memoryLimit: options.memoryLimit,
  });
  try {
    await migrate(db, spec);
    await rebuildSummaries(db, spec);
  } catch (err) {
    await db.close();
    throw err;
  }
  const writes = new DomainWrites(db, spec, tmpDir, onEvent);
  // In the background: the first one-record writes need not each read their groups.
  writes.warm();
  // Opened at the first lake export: most domains never export one.
  let blobs: Promise<BlobStore> | undefined;
  const lakeStore = (): Promise<BlobStore> => {
    const fallback = options.dataDir ?? (options.dbPath === ':memory:' ? tmpDir : `${options.dbPath}.lake`);
    blobs ??= options.blobStore
      ? Promise.resolve(options.blobStore)
      : openBlobStore(options.blobStoreUrl ?? pathToFileURL(path.resolve(fallback)).href);
    return blobs;
  };
  return {
    db,
    spec,
    queries: new DomainQueries(db, spec),
    writes,
    exporter: new Exporter(db, spec, (ext) => writes.tempFile(ext)),
    outbox: duckOutboxSource(db),
    lake: new LakeExporter(
      db,
      spec,
      lakeStore,
      (name) => path.join(tmpDir, `${name}-${randomUUID()}`),
      options.loadTimeoutMs ?? 10 * 60_000,
    ),
  };
}
