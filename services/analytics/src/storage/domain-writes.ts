import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createEvent } from '@qlab/events';
import { notFound } from '@qlab/kit';
import { BATCH_STATUSES, type DomainSpec } from '../domain/domains';
import type { FileFormat, LoadResult, ReceivedLines } from '../domain/loading';
import { analyticsEvents } from '../events';
import type { DuckDb, Params, WriteTx } from './duck';
import { GroupStates } from './group-state';
import { dropStage, loadStaged, type Staged, stageFile } from './loader';
import { fitsFastPath, insertRecords } from './record-insert';
import { OUTBOX } from './schema';
import { DAY_SQL, daySql, markAffected, refreshAffected, successSql } from './summaries';
import { allStates } from './summary-states';

export interface BatchInput {
  batch_id?: string;
  name?: string;
  description?: string;
  status: string;
  expected_count?: number;
  model?: string;
  hardware?: string;
  started_at?: string;
  finished_at?: string;
}

/** Write side of a domain: loads, batches, deletes, each with its events in the same transaction. */
export class DomainWrites {
  constructor(
    private readonly db: DuckDb,
    readonly spec: DomainSpec,
    private readonly tmpDir: string,
    private readonly onEvent: () => void,
  ) {
    this.events = analyticsEvents(spec.name);
  }

  /** The domain's event catalogue (src/events.ts): what it writes, serves and publishes. */
  readonly events: ReturnType<typeof analyticsEvents>;
  /** What the fast path knows of the summary groups (group-state.ts). */
  readonly groups = new GroupStates();

  private warming: Promise<void> | undefined;
  private warmAgain = false;

  /** Recomputes the groups the write noted, and forgets their in-memory states once it commits. */
  private async refresh(tx: WriteTx): Promise<void> {
    const touched = await refreshAffected(tx, this.spec);
    tx.afterCommit(() => {
      this.groups.forget(touched);
      if (touched === 'all') this.warm();
    });
  }

  /**
   * Reads every group's state on a snapshot, in the background (1.7–1.9 s for a million
   * records), so the one-record writes that follow start from memory. Writes go on meanwhile;
   * a failed warm-up only leaves them reading their groups themselves. One runs at a time; asked
   * again while one runs, another follows it.
   */
  warm(): void {
    if (this.warming) {
      this.warmAgain = true;
      return;
    }
    const token = this.groups.beginWarm();
    this.warming = this.db
      .snapshot((tx) => allStates(tx, this.spec), 10 * 60_000)
      .catch(() => undefined)
      .then((seen) => {
        this.groups.finishWarm(token, seen);
        this.warming = undefined;
        if (this.warmAgain) {
          this.warmAgain = false;
          this.warm();
        }
      });
  }

  /** Resolves when no warm-up is running (benchmarks wait for it, so it does not share their CPU). */
  async warmed(): Promise<void> {
    while (this.warming) await this.warming;
  }

  /** An event of the domain's catalogue (src/events.ts), in the write's transaction. */
  private async event(tx: WriteTx, type: string, subject: string, data: unknown): Promise<void> {
    this.events.check(type, data);
    const event = createEvent(this.events.service, type, subject, data);
    await tx.runPrepared(`INSERT INTO ${OUTBOX} (event_id, topic, payload) VALUES ($1, $2, $3)`, [
      event.id,
      this.events.topic(type),
      JSON.stringify(event),
    ]);
  }

  tempFile(ext: string): string {
    return path.join(this.tmpDir, `${this.spec.name}-${randomUUID()}.${ext}`);
  }

  /**
   * Loads a file already on disk in one transaction (with `batch` upserted in it too, its
   * records the file's); the file and the temp tables are removed afterwards whatever happens.
   */
  async loadFromFile(
    file: string,
    options: { format: FileFormat; strict: boolean; maxReported: number; received?: ReceivedLines },
    timeoutMs?: number,
    batch?: BatchInput,
  ): Promise<LoadResult & { batch_id?: string }> {
    let staged: Staged | undefined;
    try {
      staged = await this.db.exclusive(
        (tx) => stageFile(tx, this.spec, file, options.format, options.received),
        timeoutMs,
      );
      const s = staged;
      const result = await this.db.write(async (tx) => {
        const upserted = batch ? await this.upsertBatchIn(tx, batch) : undefined;
        const batchId = upserted?.id;
        const r = await loadStaged(tx, this.spec, s, { ...options, batchId });
        if (r.accepted > 0) {
          // created_at is now(), the transaction's start, for rows that do not say when they started.
          await markAffected(
            tx,
            `SELECT model, hardware, ${daySql('coalesce(started_at, now())')} AS day FROM ${s.checked} WHERE reason IS NULL`,
          );
          await this.refresh(tx);
          await this.ingested(tx, r);
        }
        if (upserted?.completed) await this.batchCompleted(tx, upserted.id);
        return { ...r, batch_id: batchId };
      }, timeoutMs);
      this.onEvent();
      return result;
    } finally {
      await rm(file, { force: true });
      if (staged) {
        const s = staged;
        await this.db.exclusive((tx) => dropStage(tx, s)).catch(() => undefined);
      }
    }
  }

  private ingested(tx: WriteTx, r: LoadResult): Promise<void> {
    return this.event(tx, `${this.spec.record}.ingested`, this.spec.name, {
      domain: this.spec.name,
      count: r.accepted,
      [`${this.spec.record}_ids`]: r.ids,
      batch_ids: r.batch_ids,
    });
  }

  /**
   * Records already validated by the route, all-or-nothing: a few go straight in
   * (record-insert.ts), more are written as NDJSON and take the staged load.
   */
  async loadRecords(records: object[], batch?: BatchInput): Promise<LoadResult & { batch_id?: string }> {
    if (fitsFastPath(this.spec, records)) {
      const result = await this.db.write(async (tx) => {
        const upserted = batch ? await this.upsertBatchIn(tx, batch) : undefined;
        const r = await insertRecords(tx, this.spec, this.groups, records, upserted?.id);
        await this.ingested(tx, r);
        if (upserted?.completed) await this.batchCompleted(tx, upserted.id);
        return { ...r, batch_id: upserted?.id };
      });
      this.onEvent();
      return result;
    }
    const file = this.tempFile('ndjson');
    await pipeline(
      (function* () {
        for (const r of records) yield `${JSON.stringify(r)}\n`;
      })(),
      createWriteStream(file),
    );
    return this.loadFromFile(file, { format: 'ndjson', strict: true, maxReported: 100 }, undefined, batch);
  }

  /**
   * Creates or updates a batch; `completed` says it became completed now. Its batch.completed
   * event is the caller's to write (batchCompleted) once the batch's records of this write are in,
   * so the event counts them.
   */
  private async upsertBatchIn(tx: WriteTx, b: BatchInput): Promise<{ id: string; completed: boolean }> {
    const id = b.batch_id ?? randomUUID();
    const table = this.spec.batchTable;
    const [existing] = await tx.query<{ status: string }>(`SELECT status FROM ${table} WHERE batch_id = $1`, [
      id,
    ]);
    const fields = [
      'name',
      'description',
      'status',
      'expected_count',
      'model',
      'hardware',
      'started_at',
      'finished_at',
    ] as const;
    const values = fields.map((f) => b[f] ?? null);
    if (existing) {
      await tx.run(
        `UPDATE ${table} SET ${fields.map((f, i) => `${f} = coalesce($${i + 2}${castFor(f)}, ${f})`).join(', ')}, updated_at = now() WHERE batch_id = $1`,
        [id, ...values],
      );
    } else {
      await tx.run(
        `INSERT INTO ${table} (batch_id, ${fields.join(', ')}) VALUES ($1, ${fields.map((f, i) => `$${i + 2}${castFor(f)}`).join(', ')})`,
        [id, ...values],
      );
    }
    return { id, completed: b.status === 'completed' && existing?.status !== 'completed' };
  }

  private async batchCompleted(tx: WriteTx, id: string): Promise<void> {
    const [counts] = await tx.query(
      `SELECT count(*)::INTEGER AS total,
              count(*) FILTER (WHERE ${successSql(this.spec, 'status')})::INTEGER AS succeeded
       FROM ${this.spec.table} WHERE batch_id = $1`,
      [id],
    );
    await this.event(tx, 'batch.completed', id, { domain: this.spec.name, batch_id: id, ...counts });
  }

  async upsertBatch(b: BatchInput): Promise<string> {
    if (!BATCH_STATUSES.includes(b.status)) throw new Error(`bad batch status ${b.status}`);
    const id = await this.db.write(async (tx) => {
      const upserted = await this.upsertBatchIn(tx, b);
      if (upserted.completed) await this.batchCompleted(tx, upserted.id);
      return upserted.id;
    });
    this.onEvent();
    return id;
  }

  /** Deletes a record with its tags and child rows. */
  async deleteRecord(id: string): Promise<void> {
    const key = this.spec.idColumn;
    await this.db.write(async (tx) => {
      const [row] = await tx.query(`SELECT ${key} FROM ${this.spec.table} WHERE ${key} = $1`, [id]);
      if (!row) throw notFound(`${this.spec.record} ${id} not found`);
      await this.markRecords(tx, `r.${key} = $1`, [id]);
      for (const t of this.childTables()) await tx.run(`DELETE FROM ${t} WHERE ${key} = $1`, [id]);
      await tx.run(`DELETE FROM ${this.spec.table} WHERE ${key} = $1`, [id]);
      await this.refresh(tx);
    });
  }

  /** Deletes a batch and every record in it, with their child rows. */
  async deleteBatch(id: string): Promise<{ deleted: number }> {
    const key = this.spec.idColumn;
    return this.db.write(async (tx) => {
      const [row] = await tx.query(`SELECT batch_id FROM ${this.spec.batchTable} WHERE batch_id = $1`, [id]);
      const [count] = await tx.query<{ n: number }>(
        `SELECT count(*)::INTEGER AS n FROM ${this.spec.table} WHERE batch_id = $1`,
        [id],
      );
      if (!row && !count?.n) throw notFound(`batch ${id} not found`);
      await this.markRecords(tx, 'r.batch_id = $1', [id]);
      const inBatch = `SELECT ${key} FROM ${this.spec.table} WHERE batch_id = $1`;
      for (const t of this.childTables()) await tx.run(`DELETE FROM ${t} WHERE ${key} IN (${inBatch})`, [id]);
      await tx.run(`DELETE FROM ${this.spec.table} WHERE batch_id = $1`, [id]);
      await tx.run(`DELETE FROM ${this.spec.batchTable} WHERE batch_id = $1`, [id]);
      await this.refresh(tx);
      return { deleted: count?.n ?? 0 };
    });
  }

  /** Notes the summary groups of the records about to be deleted. */
  private markRecords(tx: WriteTx, where: string, params: Params): Promise<void> {
    return markAffected(
      tx,
      `SELECT r.model, r.hardware, ${DAY_SQL} AS day FROM ${this.spec.table} r WHERE ${where}`,
      params,
    );
  }

  private childTables(): string[] {
    return [this.spec.tagsTable, ...this.spec.children.map((c) => c.table)];
  }
}

function castFor(field: string): string {
  if (field === 'expected_count') return '::INTEGER';
  if (field.endsWith('_at')) return '::TIMESTAMPTZ';
  return '::VARCHAR';
}
