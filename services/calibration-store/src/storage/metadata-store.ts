import { isPostgres, type Knex } from '@qlab/kit';
import type { ArchiveKind, ArchiveQuery, ArchiveRecord, NewArchive } from '../domain/archives';

/** Archive metadata: rows only, never bytes (those live in the BlobStore). */
export interface MetadataStore {
  /**
   * Runs `fn` in a transaction that holds the lock of one content (SHA-256) across every
   * replica: saving and deleting rows that point at content, and the content itself, happen
   * only inside it, so a delete never removes bytes a concurrent save has just counted on.
   */
  withContent<T>(sha256: string, fn: (trx: Knex.Transaction) => Promise<T>): Promise<T>;
  insert(trx: Knex.Transaction, record: NewArchive): Promise<ArchiveRecord>;
  get(kind: ArchiveKind, id: number): Promise<ArchiveRecord | undefined>;
  /** Newest first (created_at, then id). */
  list(kind: ArchiveKind, query: ArchiveQuery): Promise<{ items: ArchiveRecord[]; total: number }>;
  latest(
    kind: ArchiveKind,
    filter: { hashID?: string; name?: string; runId?: string },
  ): Promise<ArchiveRecord | undefined>;
  /** Every matching row, newest first, a batch at a time (memory stays flat however many there are). */
  each(
    kind: ArchiveKind,
    query: Omit<ArchiveQuery, 'limit' | 'offset'>,
    onBatch: (rows: ArchiveRecord[]) => Promise<void>,
  ): Promise<number>;
  remove(trx: Knex.Transaction, kind: ArchiveKind, id: number): Promise<ArchiveRecord | undefined>;
  /** How many rows of either kind point at this content. */
  references(sha256: string, trx?: Knex.Transaction): Promise<number>;
  stats(): Promise<ArchiveStats>;
}

export interface ArchiveStats {
  calibrations: number;
  results: number;
  /** Bytes referenced by rows (duplicates counted once per row). */
  bytes: number;
  latestCalibrationAt: number | null;
  latestResultAt: number | null;
}

interface Row {
  id: number;
  hash_id: string;
  name?: string;
  run_id?: string | null;
  notes: string;
  filename: string;
  size: number | string;
  sha256: string;
  created_at: number | string;
}

const TABLE: Record<ArchiveKind, string> = { calibration: 'calibrations', result: 'results' };

function fromRow(kind: ArchiveKind, r: Row): ArchiveRecord {
  return {
    id: Number(r.id),
    kind,
    hashID: r.hash_id,
    name: r.name ?? null,
    runId: r.run_id ?? null,
    notes: r.notes,
    filename: r.filename,
    size: Number(r.size),
    sha256: r.sha256,
    createdAt: Number(r.created_at),
  };
}

/** The first number of calibration-store's advisory locks (other services use others). */
const CONTENT_LOCK_NAMESPACE = 0x5143_4131; // "QCA1"

/** The content's first 32 bits as PostgreSQL's signed int4. */
function lockId(sha256: string): number {
  return Number.parseInt(sha256.slice(0, 8), 16) | 0;
}

export class KnexMetadataStore implements MetadataStore {
  /** Milliseconds of the last insert: keeps created_at strictly increasing so "newest" is never a tie. */
  private lastCreatedAt = 0;

  constructor(private readonly knex: Knex) {}

  async withContent<T>(sha256: string, fn: (trx: Knex.Transaction) => Promise<T>): Promise<T> {
    return this.knex.transaction(async (trx) => {
      // PostgreSQL: an advisory lock held until the transaction ends, keyed by this service's
      // namespace and the content's first 32 bits (a collision only makes two contents wait on
      // each other). SQLite has one connection per process and one process per file, so its
      // transactions are already one at a time.
      if (isPostgres(this.knex))
        await trx.raw('select pg_advisory_xact_lock(?, ?)', [CONTENT_LOCK_NAMESPACE, lockId(sha256)]);
      return fn(trx);
    });
  }

  async insert(trx: Knex.Transaction, record: NewArchive): Promise<ArchiveRecord> {
    const createdAt = Math.max(Date.now(), this.lastCreatedAt + 1);
    this.lastCreatedAt = createdAt;
    const row: Omit<Row, 'id'> = {
      hash_id: record.hashID,
      notes: record.notes,
      filename: record.filename,
      size: record.size,
      sha256: record.sha256,
      created_at: createdAt,
      ...(record.kind === 'result' ? { name: record.name ?? '', run_id: record.runId } : {}),
    };
    const [inserted] = await trx(TABLE[record.kind]).insert(row).returning('id');
    const id = typeof inserted === 'object' ? Number((inserted as { id: number }).id) : Number(inserted);
    return fromRow(record.kind, { ...row, id });
  }

  async get(kind: ArchiveKind, id: number): Promise<ArchiveRecord | undefined> {
    const row = await this.knex<Row>(TABLE[kind]).where({ id }).first();
    return row ? fromRow(kind, row) : undefined;
  }

  private filtered(kind: ArchiveKind, q: Partial<ArchiveQuery>) {
    const b = this.knex<Row>(TABLE[kind]);
    if (q.hashID !== undefined) b.where('hash_id', q.hashID);
    if (q.name !== undefined && kind === 'result') b.where('name', q.name);
    if (q.runId !== undefined && kind === 'result') b.where('run_id', q.runId);
    if (q.since !== undefined) b.where('created_at', '>=', q.since);
    if (q.until !== undefined) b.where('created_at', '<', q.until);
    return b;
  }

  async list(kind: ArchiveKind, q: ArchiveQuery): Promise<{ items: ArchiveRecord[]; total: number }> {
    const [rows, count] = await Promise.all([
      this.filtered(kind, q)
        .select('*')
        .orderBy([
          { column: 'created_at', order: 'desc' },
          { column: 'id', order: 'desc' },
        ])
        .limit(q.limit)
        .offset(q.offset),
      this.filtered(kind, q).count({ n: '*' }).first(),
    ]);
    return { items: (rows as Row[]).map((r) => fromRow(kind, r)), total: Number(count?.n ?? 0) };
  }

  async latest(
    kind: ArchiveKind,
    filter: { hashID?: string; name?: string; runId?: string },
  ): Promise<ArchiveRecord | undefined> {
    const { items } = await this.list(kind, { ...filter, limit: 1, offset: 0 });
    return items[0];
  }

  async each(
    kind: ArchiveKind,
    q: Omit<ArchiveQuery, 'limit' | 'offset'>,
    onBatch: (rows: ArchiveRecord[]) => Promise<void>,
    batch = 500,
  ): Promise<number> {
    // Keyset paging on (created_at, id) descending: each batch starts after the last row seen.
    let after: { createdAt: number; id: number } | undefined;
    let count = 0;
    for (;;) {
      const b = this.filtered(kind, q).select('*');
      if (after) {
        const a = after;
        b.where((w) =>
          w
            .where('created_at', '<', a.createdAt)
            .orWhere((x) => x.where('created_at', a.createdAt).where('id', '<', a.id)),
        );
      }
      const rows = (
        (await b
          .orderBy([
            { column: 'created_at', order: 'desc' },
            { column: 'id', order: 'desc' },
          ])
          .limit(batch)) as Row[]
      ).map((r) => fromRow(kind, r));
      if (rows.length === 0) return count;
      await onBatch(rows);
      count += rows.length;
      const last = rows[rows.length - 1]!;
      after = { createdAt: last.createdAt, id: last.id };
      if (rows.length < batch) return count;
    }
  }

  async remove(trx: Knex.Transaction, kind: ArchiveKind, id: number): Promise<ArchiveRecord | undefined> {
    const row = await trx<Row>(TABLE[kind]).where({ id }).first();
    if (!row) return undefined;
    await trx(TABLE[kind]).where({ id }).delete();
    return fromRow(kind, row);
  }

  async references(sha256: string, trx: Knex | Knex.Transaction = this.knex): Promise<number> {
    // One after the other: a transaction is one connection.
    const a = await trx('calibrations').where({ sha256 }).count({ n: '*' }).first();
    const b = await trx('results').where({ sha256 }).count({ n: '*' }).first();
    return Number(a?.n ?? 0) + Number(b?.n ?? 0);
  }

  async stats(): Promise<ArchiveStats> {
    const one = (table: string) =>
      this.knex(table)
        .select(
          this.knex.raw('count(*) as n'),
          this.knex.raw('coalesce(sum(size), 0) as bytes'),
          this.knex.raw('max(created_at) as latest'),
        )
        .first() as Promise<{ n: number | string; bytes: number | string; latest: number | string | null }>;
    const [c, r] = await Promise.all([one('calibrations'), one('results')]);
    return {
      calibrations: Number(c.n),
      results: Number(r.n),
      bytes: Number(c.bytes) + Number(r.bytes),
      latestCalibrationAt: c.latest === null ? null : Number(c.latest),
      latestResultAt: r.latest === null ? null : Number(r.latest),
    };
  }
}
