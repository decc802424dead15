import { conflict, type Knex } from '@qlab/kit';
import type { ChunkRecord, Upload, UploadStatus } from '../domain/upload';

interface Row {
  id: string;
  protocol: string;
  key_id: string;
  client_filename: string;
  client_upload_id: string | null;
  target_path: string | null;
  active_target: string | null;
  data_path: string;
  offset: number | string;
  length: number | string | null;
  metadata: string;
  status: string;
  concat: string | null;
  concat_parts: string;
  total_chunks: number | null;
  next_chunk: number;
  created_at: number | string;
  updated_at: number | string;
  expires_at: number | string;
  completed_at: number | string | null;
}

const num = (v: number | string | null): number | null => (v === null ? null : Number(v));

function fromRow(r: Row): Upload {
  return {
    id: r.id,
    protocol: r.protocol as Upload['protocol'],
    keyId: r.key_id,
    clientFilename: r.client_filename,
    clientUploadId: r.client_upload_id,
    targetPath: r.target_path,
    dataPath: r.data_path,
    offset: Number(r.offset),
    length: num(r.length),
    metadata: JSON.parse(r.metadata) as Record<string, string>,
    status: r.status as UploadStatus,
    concat: r.concat as Upload['concat'],
    concatParts: JSON.parse(r.concat_parts) as string[],
    totalChunks: r.total_chunks,
    nextChunk: Number(r.next_chunk),
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
    expiresAt: Number(r.expires_at),
    completedAt: num(r.completed_at),
  };
}

function toRow(u: Partial<Upload>): Partial<Row> {
  const row: Partial<Row> = {};
  if (u.id !== undefined) row.id = u.id;
  if (u.protocol !== undefined) row.protocol = u.protocol;
  if (u.keyId !== undefined) row.key_id = u.keyId;
  if (u.clientFilename !== undefined) row.client_filename = u.clientFilename;
  if (u.clientUploadId !== undefined) row.client_upload_id = u.clientUploadId;
  if (u.targetPath !== undefined) row.target_path = u.targetPath;
  if (u.dataPath !== undefined) row.data_path = u.dataPath;
  if (u.offset !== undefined) row.offset = u.offset;
  if (u.length !== undefined) row.length = u.length;
  if (u.metadata !== undefined) row.metadata = JSON.stringify(u.metadata);
  if (u.status !== undefined) {
    row.status = u.status;
    if (u.status !== 'active') row.active_target = null;
  }
  if (u.concat !== undefined) row.concat = u.concat;
  if (u.concatParts !== undefined) row.concat_parts = JSON.stringify(u.concatParts);
  if (u.totalChunks !== undefined) row.total_chunks = u.totalChunks;
  if (u.nextChunk !== undefined) row.next_chunk = u.nextChunk;
  if (u.createdAt !== undefined) row.created_at = u.createdAt;
  if (u.updatedAt !== undefined) row.updated_at = u.updatedAt;
  if (u.expiresAt !== undefined) row.expires_at = u.expiresAt;
  if (u.completedAt !== undefined) row.completed_at = u.completedAt;
  return row;
}

function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return (
    e.code === '23505' ||
    e.code === 'SQLITE_CONSTRAINT_UNIQUE' ||
    /UNIQUE constraint failed/.test(e.message ?? '')
  );
}

export interface UploadListQuery {
  /** Only this owner's uploads (see api-keys.ts). */
  keyId?: string;
  /** Finished uploads of every owner, and unfinished ones of this owner only. */
  visibleTo?: string;
  status?: UploadStatus;
  protocol?: Upload['protocol'];
  /** Substring of the client or target file name. */
  q?: string;
  limit: number;
  offset: number;
}

/** Upload sessions and IndexedCP chunk records, over knex (SQLite or PostgreSQL). */
export class UploadStore {
  constructor(readonly knex: Knex) {}

  /** Inserts an upload; a clash on an active target is a 409. */
  async create(upload: Upload, db: Knex | Knex.Transaction = this.knex): Promise<Upload> {
    try {
      await db('uploads').insert({
        ...toRow(upload),
        active_target: upload.status === 'active' ? upload.targetPath : null,
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw conflict(`another upload to "${upload.targetPath}" is in progress`);
      throw err;
    }
    return upload;
  }

  async get(id: string, db: Knex | Knex.Transaction = this.knex): Promise<Upload | undefined> {
    const row = await db<Row>('uploads').where({ id }).first();
    return row ? fromRow(row) : undefined;
  }

  /**
   * The IndexedCP upload a chunk belongs to: by client upload id (active or finished, so late
   * repeats are recognised), or else the newest active upload of that file name.
   */
  async findIndexedcp(
    keyId: string,
    clientFilename: string,
    clientUploadId: string | null,
  ): Promise<Upload | undefined> {
    const q = this.knex<Row>('uploads').where({ key_id: keyId, protocol: 'indexedcp' });
    if (clientUploadId)
      q.where({ client_upload_id: clientUploadId }).whereIn('status', ['active', 'complete']);
    else q.where({ client_filename: clientFilename, status: 'active' }).whereNull('client_upload_id');
    const row = await q.orderBy('created_at', 'desc').first();
    return row ? fromRow(row) : undefined;
  }

  /**
   * The newest IndexedCP upload of this name that ended without a declared total (idle, or a
   * new chunk 0), so a chunk arriving after that can be told so instead of starting a file
   * that would never be whole.
   */
  async lastEndedWithoutTotal(keyId: string, clientFilename: string): Promise<Upload | undefined> {
    const row = await this.knex<Row>('uploads')
      .where({ key_id: keyId, protocol: 'indexedcp', client_filename: clientFilename, status: 'complete' })
      .whereNull('client_upload_id')
      .whereNull('total_chunks')
      .orderBy('completed_at', 'desc')
      .first();
    return row ? fromRow(row) : undefined;
  }

  /**
   * Active IndexedCP uploads without a total whose last chunk came before `before` and that
   * wait for no missing chunk (none buffered beyond a gap).
   */
  async idleWithoutTotal(before: number, limit = 100): Promise<Upload[]> {
    const knex = this.knex;
    const rows = await knex<Row>('uploads')
      .where({ status: 'active', protocol: 'indexedcp' })
      .whereNull('total_chunks')
      .where('next_chunk', '>', 0)
      .where('updated_at', '<', before)
      .whereNotExists(function buffered() {
        this.select(knex.raw('1'))
          .from('upload_chunks')
          .whereRaw('upload_chunks.upload_id = uploads.id')
          .where('upload_chunks.state', 'buffered');
      })
      .orderBy('updated_at')
      .limit(limit);
    return rows.map(fromRow);
  }

  /**
   * An active upload whose target is a folder of `target`, or lies inside `target`: publishing
   * either would need a file and a folder of one name (allow-paths mode).
   */
  async nestedTargetTaken(target: string): Promise<string | undefined> {
    const parts = target.split('/');
    const ancestors = parts.slice(0, -1).map((_, i) => parts.slice(0, i + 1).join('/'));
    const prefix = `${target}/`;
    const row = (await this.knex('uploads')
      .whereNotNull('active_target')
      .where((q) => {
        if (ancestors.length > 0) q.whereIn('active_target', ancestors);
        q.orWhereRaw('substr(active_target, 1, ?) = ?', [prefix.length, prefix]);
      })
      .first('active_target')) as { active_target: string } | undefined;
    return row?.active_target;
  }

  /**
   * Has another upload taken this finished upload's data path since (the file was moved away and
   * the name reused)? Published, or still being written in place (a seed-style IndexedCP upload).
   */
  async publishedLater(upload: Upload): Promise<boolean> {
    const row = await this.knex('uploads')
      .where({ data_path: upload.dataPath })
      .whereIn('status', ['active', 'complete'])
      .whereNot({ id: upload.id })
      .andWhere('created_at', '>=', upload.completedAt ?? upload.createdAt)
      .first('id');
    return Boolean(row);
  }

  /** Is a target path taken by an active upload? */
  async targetTaken(targetPath: string): Promise<boolean> {
    return Boolean(await this.knex('uploads').where({ active_target: targetPath }).first('id'));
  }

  async update(id: string, patch: Partial<Upload>, db: Knex | Knex.Transaction = this.knex): Promise<void> {
    await db('uploads').where({ id }).update(toRow(patch));
  }

  async chunks(uploadId: string): Promise<ChunkRecord[]> {
    const rows = await this.knex('upload_chunks').where({ upload_id: uploadId }).orderBy('chunk_index');
    return rows.map(
      (r: {
        upload_id: string;
        chunk_index: number;
        size: number | string;
        sha256: string;
        state: string;
      }) => ({
        uploadId: r.upload_id,
        index: Number(r.chunk_index),
        size: Number(r.size),
        sha256: r.sha256,
        state: r.state as ChunkRecord['state'],
      }),
    );
  }

  async chunk(uploadId: string, index: number): Promise<ChunkRecord | undefined> {
    const r = await this.knex('upload_chunks').where({ upload_id: uploadId, chunk_index: index }).first();
    return r ? { uploadId, index, size: Number(r.size), sha256: r.sha256, state: r.state } : undefined;
  }

  /** Forgets an upload and its chunk records (one whose creating request was refused). */
  async remove(id: string): Promise<void> {
    await this.knex.transaction(async (trx) => {
      await trx('upload_chunks').where({ upload_id: id }).delete();
      await trx('uploads').where({ id }).delete();
    });
  }

  /** Bytes of an upload's chunks that arrived early and wait in buffers. */
  async bufferedBytes(uploadId: string): Promise<number> {
    const r = (await this.knex('upload_chunks')
      .where({ upload_id: uploadId, state: 'buffered' })
      .sum({ b: 'size' })
      .first()) as { b: number | string | null } | undefined;
    return Number(r?.b ?? 0);
  }

  async putChunk(c: ChunkRecord, db: Knex | Knex.Transaction = this.knex): Promise<void> {
    await db('upload_chunks')
      .insert({ upload_id: c.uploadId, chunk_index: c.index, size: c.size, sha256: c.sha256, state: c.state })
      .onConflict(['upload_id', 'chunk_index'])
      .merge(['state']);
  }

  async list(q: UploadListQuery): Promise<{ items: Upload[]; total: number }> {
    const base = () => {
      const b = this.knex<Row>('uploads');
      if (q.keyId !== undefined) b.where({ key_id: q.keyId });
      if (q.visibleTo !== undefined) {
        const owner = q.visibleTo;
        b.where((w) => w.where({ status: 'complete' }).orWhere({ key_id: owner }));
      }
      if (q.status) b.where({ status: q.status });
      if (q.protocol) b.where({ protocol: q.protocol });
      if (q.q) {
        const like = `%${q.q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
        b.where((w) =>
          w
            .whereRaw("client_filename like ? escape '\\'", [like])
            .orWhereRaw("target_path like ? escape '\\'", [like]),
        );
      }
      return b;
    };
    const [rows, count] = await Promise.all([
      base().select('*').orderBy('created_at', 'desc').limit(q.limit).offset(q.offset),
      base().count({ n: '*' }).first(),
    ]);
    return { items: (rows as Row[]).map(fromRow), total: Number(count?.n ?? 0) };
  }

  /**
   * What an owner holds open: active sessions, and the bytes they declared (or reached), with
   * IndexedCP chunks waiting in buffers.
   */
  async openUsage(keyId: string): Promise<{ sessions: number; bytes: number }> {
    const r = (await this.knex('uploads')
      .where({ key_id: keyId, status: 'active' })
      .count({ n: '*' })
      .select(this.knex.raw('coalesce(sum(coalesce("length", "offset")), 0) as b'))
      .first()) as { n: number | string; b: number | string } | undefined;
    const buffered = (await this.knex('upload_chunks as c')
      .join('uploads as u', 'u.id', 'c.upload_id')
      .where({ 'u.key_id': keyId, 'u.status': 'active', 'c.state': 'buffered' })
      // A buffered chunk holds a file and a row whatever its size: it counts as at least 4 KiB.
      .select(this.knex.raw('sum(case when c.size < 4096 then 4096 else c.size end) as b'))
      .first()) as { b: number | string | null } | undefined;
    return { sessions: Number(r?.n ?? 0), bytes: Number(r?.b ?? 0) + Number(buffered?.b ?? 0) };
  }

  async expiredBefore(now: number, limit = 100): Promise<Upload[]> {
    const rows = await this.knex<Row>('uploads')
      .where({ status: 'active' })
      .where('expires_at', '<', now)
      .limit(limit);
    return rows.map(fromRow);
  }

  async counts(): Promise<Record<string, number>> {
    const rows = await this.knex('uploads').select('status').count({ n: '*' }).groupBy('status');
    const out: Record<string, number> = { active: 0, complete: 0, terminated: 0, expired: 0 };
    for (const r of rows as { status: string; n: number | string }[]) out[r.status] = Number(r.n);
    return out;
  }

  async completedBytes(): Promise<number> {
    const r = await this.knex('uploads').where({ status: 'complete' }).sum({ s: 'offset' }).first();
    return Number(r?.s ?? 0);
  }

  /**
   * Uploads completed and their bytes in each UTC day of the `days` up to and including the day
   * of `now`, oldest first, empty days included, counted by the database.
   */
  async completedPerDay(
    days: number,
    now: number,
  ): Promise<{ day: string; uploads: number; bytes: number }[]> {
    const dayMs = 86_400_000;
    const from = (Math.floor(now / dayMs) - days + 1) * dayMs;
    const rows = (await this.knex('uploads')
      .where({ status: 'complete' })
      .where('completed_at', '>=', from)
      .select(
        // SQLite binds JS numbers as REAL, so the division is cast back to a whole day.
        this.knex.raw('cast((completed_at - ?) / ? as integer) as d', [from, dayMs]),
      )
      .count({ n: '*' })
      .sum({ b: 'offset' })
      .groupByRaw('1')) as { d: number | string; n: number | string; b: number | string | null }[];
    const byDay = new Map(rows.map((r) => [Number(r.d), r]));
    return Array.from({ length: days }, (_, i) => {
      const r = byDay.get(i);
      return {
        day: new Date(from + i * dayMs).toISOString().slice(0, 10),
        uploads: Number(r?.n ?? 0),
        bytes: Number(r?.b ?? 0),
      };
    });
  }
}
