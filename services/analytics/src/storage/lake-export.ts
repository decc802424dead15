import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { BlobStore } from '@qlab/blob-store';
import type { DomainSpec } from '../domain/domains';
import type { DuckDb } from './duck';

/** What one lake export wrote. */
export interface LakeExport {
  /** Where the lake is: `<location>/lake/<domain>/<table>/day=YYYY-MM-DD/data_0.parquet`. */
  location: string;
  /** Days from this one on were rewritten (null: every day). */
  since: string | null;
  tables: { table: string; days: number; rows: number }[];
  /** Partitions of rewritten days that no longer have rows, removed. */
  removed: number;
  duration_ms: number;
}

const DAY = /^\d{4}-\d{2}-\d{2}$/;

/**
 * The domain's history as Hive-partitioned Parquet in the blob store, one partition per UTC day,
 * so DuckDB, Spark or Trino elsewhere can query more than one file holds:
 * `lake/<domain>/<table>/day=<YYYY-MM-DD>/data_0.parquet`. Records are placed by the day they
 * started (or were recorded, when they have no start); their tags and child rows by their
 * record's day; batches by the day they were made.
 *
 * Idempotent: an export rewrites every partition of the days it covers whole (DuckDB writes
 * them with COPY … PARTITION_BY into a temp folder, then each file replaces its object) and
 * removes those days' partitions that have no rows any more, so running it twice leaves the
 * same objects, and a deleted record leaves the lake at the next export of its day. One export
 * runs at a time.
 */
export class LakeExporter {
  private running: Promise<unknown> = Promise.resolve();
  /** The export waiting for the running one, if any: at most one waits. */
  private queued?: { since: string | undefined; run: Promise<LakeExport> };

  constructor(
    private readonly db: DuckDb,
    private readonly spec: DomainSpec,
    private readonly store: () => Promise<BlobStore>,
    /** A fresh temp folder path (removed afterwards). */
    private readonly tempPath: (name: string) => string,
    /** How long one table's COPY may take (the load timeout: it reads the whole table). */
    private readonly timeoutMs: number,
  ) {}

  /** Rewrites the days from `since` (YYYY-MM-DD, UTC) on, or every day. */
  export(since?: string): Promise<LakeExport> {
    if (since !== undefined && !DAY.test(since)) throw new RangeError('since must be YYYY-MM-DD');
    const waiting = this.queued;
    if (waiting) {
      // Requests while one waits join it, widened to cover them all: the queue stays one long.
      if (waiting.since !== undefined && (since === undefined || since < waiting.since))
        waiting.since = since;
      return waiting.run;
    }
    const entry = { since } as { since: string | undefined; run: Promise<LakeExport> };
    entry.run = this.running.then(() => {
      this.queued = undefined;
      return this.run(entry.since);
    });
    this.queued = entry;
    this.running = entry.run.catch(() => undefined);
    return entry.run;
  }

  /** Each table with the SQL of its rows and their day. */
  private tables(): { table: string; select: string }[] {
    const { spec } = this;
    const id = spec.idColumn;
    const recordDay = `strftime(timezone('UTC', coalesce(r.started_at, r.created_at)), '%Y-%m-%d')`;
    return [
      { table: spec.table, select: `SELECT r.*, ${recordDay} AS day FROM ${spec.table} r` },
      {
        table: spec.batchTable,
        select: `SELECT b.*, strftime(timezone('UTC', b.created_at), '%Y-%m-%d') AS day FROM ${spec.batchTable} b`,
      },
      ...[spec.tagsTable, ...spec.children.map((c) => c.table)].map((t) => ({
        table: t,
        select: `SELECT c.*, ${recordDay} AS day FROM ${t} c JOIN ${spec.table} r ON r.${id} = c.${id}`,
      })),
    ];
  }

  private async run(since: string | undefined): Promise<LakeExport> {
    const started = Date.now();
    const blobs = await this.store();
    const result: LakeExport = {
      location: `${blobs.location}/lake/${this.spec.name}`,
      since: since ?? null,
      tables: [],
      removed: 0,
      duration_ms: 0,
    };
    const tables = this.tables().map((t) => ({ ...t, dir: this.tempPath(`lake-${t.table}`), rows: 0 }));
    try {
      // Every table from one snapshot: a record ingested meanwhile is in all of them or none.
      await this.db.snapshot(async (tx) => {
        for (const t of tables) {
          const where = since ? ` WHERE day >= '${since}'` : '';
          // COPY answers the rows it wrote; ORDER BY ALL makes the files the same for the same rows.
          const copied = await tx.query<{ Count: bigint | number }>(
            `COPY (SELECT * FROM (${t.select})${where} ORDER BY ALL) TO '${t.dir.replace(/'/g, "''")}' (FORMAT parquet, PARTITION_BY (day), COMPRESSION zstd)`,
          );
          t.rows = Number(copied[0]?.Count ?? 0);
        }
      }, this.timeoutMs * tables.length);
      for (const { table, dir, rows } of tables) {
        const prefix = `lake/${this.spec.name}/${table}/`;
        const written = new Set<string>();
        for (const part of await readdir(dir).catch(() => [] as string[])) {
          for (const file of await readdir(path.join(dir, part))) {
            const key = `${prefix}${part}/${file}`;
            await blobs.moveFile(key, path.join(dir, part, file), {
              contentType: 'application/vnd.apache.parquet',
            });
            written.add(key);
          }
        }
        // Partitions of the days covered that this export did not write have no rows now. A
        // partition whose name is not a day (`day=infinity`, from times ingest refuses today)
        // is covered by every export, so it goes too.
        for await (const o of blobs.list(prefix)) {
          const day = /\/day=([^/]*)\//.exec(o.key)?.[1];
          if (written.has(o.key) || day === undefined) continue;
          if (since && DAY.test(day) && day < since) continue;
          await blobs.delete(o.key);
          result.removed++;
        }
        result.tables.push({ table, days: new Set([...written].map((k) => k.split('/')[3])).size, rows });
      }
    } finally {
      for (const { dir } of tables) await rm(dir, { recursive: true, force: true });
    }
    result.duration_ms = Date.now() - started;
    return result;
  }
}
