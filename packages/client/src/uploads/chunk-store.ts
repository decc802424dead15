import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';

export type ChunkStatus = 'pending' | 'uploaded' | 'confirmed' | 'failed';

export interface BufferedFile {
  id: string;
  /** The name sent as X-File-Name. */
  name: string;
  sourcePath: string;
  size: number;
  chunkSize: number;
  totalChunks: number;
  addedAt: number;
  /** Set once the server said the whole file arrived. */
  completedAt: number | null;
  actualFilename: string | null;
  /** Encrypted files: the stream, the server key and the wrapped session key (never the key itself). */
  envelope: { sessionId: string; kid: string; wrappedKey: Buffer } | null;
}

/** The sealing of one encrypted chunk (its ciphertext is the chunk's data). */
export interface ChunkSeal {
  iv: Buffer;
  authTag: Buffer;
  aad: Buffer;
}

export interface ChunkRow {
  fileId: string;
  index: number;
  status: ChunkStatus;
  retryCount: number;
  lastAttemptAt: number | null;
  nextRetryAt: number;
  /** The last five errors, oldest first. */
  errors: string[];
  sha256: string;
  size: number;
}

const SCHEMA = `
create table if not exists files (
  id text primary key,
  name text not null,
  source_path text not null,
  size integer not null,
  chunk_size integer not null,
  total_chunks integer not null,
  added_at integer not null,
  completed_at integer,
  actual_filename text
);
create table if not exists chunks (
  file_id text not null references files(id) on delete cascade,
  idx integer not null,
  data blob,
  size integer not null,
  sha256 text not null,
  status text not null default 'pending',
  retry_count integer not null default 0,
  last_attempt_at integer,
  next_retry_at integer not null default 0,
  errors text not null default '[]',
  primary key (file_id, idx)
);
create index if not exists chunks_due on chunks(status, next_retry_at);
create table if not exists key_cache (
  kid text primary key,
  public_key text not null,
  fetched_at integer not null,
  expires_at integer not null
);
`;

/** Columns added after the first version: an older buffer gains them on open. */
const ADDED_COLUMNS: [table: string, column: string, type: string][] = [
  ['files', 'session_id', 'text'],
  ['files', 'kid', 'text'],
  ['files', 'wrapped_key', 'blob'],
  ['chunks', 'iv', 'blob'],
  ['chunks', 'auth_tag', 'blob'],
  ['chunks', 'aad', 'blob'],
];

interface RawChunk {
  file_id: string;
  idx: number;
  status: ChunkStatus;
  retry_count: number;
  last_attempt_at: number | null;
  next_retry_at: number;
  errors: string;
  sha256: string;
  size: number;
}

const toChunk = (r: RawChunk): ChunkRow => ({
  fileId: r.file_id,
  index: r.idx,
  status: r.status,
  retryCount: r.retry_count,
  lastAttemptAt: r.last_attempt_at,
  nextRetryAt: r.next_retry_at,
  errors: JSON.parse(r.errors) as string[],
  sha256: r.sha256,
  size: r.size,
});

/**
 * The client's offline buffer: files split into chunks and kept, bytes included, in SQLite
 * (WAL), so uploads survive the network, the server and the client process going away.
 */
export class ChunkStore {
  private readonly db: Database.Database;

  constructor(file: string) {
    mkdirSync(path.dirname(file), { recursive: true });
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('foreign_keys = ON');
    this.db.exec(SCHEMA);
    for (const [table, column, type] of ADDED_COLUMNS) {
      const columns = this.db.prepare(`pragma table_info(${table})`).all() as { name: string }[];
      if (!columns.some((c) => c.name === column))
        this.db.exec(`alter table ${table} add column ${column} ${type}`);
    }
  }

  addFile(
    file: Omit<BufferedFile, 'id' | 'completedAt' | 'actualFilename'>,
    /** Read while the transaction runs, one at a time: a file is never held whole in memory. */
    chunks: Iterable<{ data: Buffer; sha256: string; seal?: ChunkSeal }>,
  ): BufferedFile {
    const id = randomUUID();
    const insertFile = this.db.prepare(
      'insert into files (id, name, source_path, size, chunk_size, total_chunks, added_at, session_id, kid, wrapped_key) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    );
    const insertChunk = this.db.prepare(
      'insert into chunks (file_id, idx, data, size, sha256, iv, auth_tag, aad) values (?, ?, ?, ?, ?, ?, ?, ?)',
    );
    this.db.transaction(() => {
      insertFile.run(
        id,
        file.name,
        file.sourcePath,
        file.size,
        file.chunkSize,
        file.totalChunks,
        file.addedAt,
        file.envelope?.sessionId ?? null,
        file.envelope?.kid ?? null,
        file.envelope?.wrappedKey ?? null,
      );
      let i = 0;
      for (const c of chunks)
        insertChunk.run(
          id,
          i++,
          c.data,
          c.data.length,
          c.sha256,
          c.seal?.iv ?? null,
          c.seal?.authTag ?? null,
          c.seal?.aad ?? null,
        );
    })();
    return { ...file, id, completedAt: null, actualFilename: null };
  }

  /** An encrypted chunk's seal. */
  chunkSeal(fileId: string, index: number): ChunkSeal {
    const row = this.db
      .prepare('select iv, auth_tag, aad from chunks where file_id = ? and idx = ?')
      .get(fileId, index) as { iv: Buffer | null; auth_tag: Buffer | null; aad: Buffer | null } | undefined;
    if (!row?.iv || !row.auth_tag || !row.aad) throw new Error(`chunk ${index} of ${fileId} is not sealed`);
    return { iv: row.iv, authTag: row.auth_tag, aad: row.aad };
  }

  cachePublicKey(key: { kid: string; publicKey: string; expiresAt: number }, at: number): void {
    this.db
      .prepare(
        'insert into key_cache (kid, public_key, fetched_at, expires_at) values (?, ?, ?, ?) on conflict(kid) do update set fetched_at = excluded.fetched_at, expires_at = excluded.expires_at',
      )
      .run(key.kid, key.publicKey, at, key.expiresAt);
  }

  /** The most recently fetched public key that has not expired. */
  cachedPublicKey(now: number): { kid: string; publicKey: string; expiresAt: number } | undefined {
    const r = this.db
      .prepare(
        'select kid, public_key, expires_at from key_cache where expires_at > ? order by fetched_at desc limit 1',
      )
      .get(now) as { kid: string; public_key: string; expires_at: number } | undefined;
    return r ? { kid: r.kid, publicKey: r.public_key, expiresAt: r.expires_at } : undefined;
  }

  cachedKeyCount(): number {
    return (this.db.prepare('select count(*) as n from key_cache').get() as { n: number }).n;
  }

  /** Chunks that are pending and due, oldest file first, in index order. */
  dueChunks(now: number): (ChunkRow & { file: BufferedFile })[] {
    const rows = this.db
      .prepare(
        `select c.file_id, c.idx, c.status, c.retry_count, c.last_attempt_at, c.next_retry_at, c.errors, c.sha256, c.size
           from chunks c join files f on f.id = c.file_id
          where c.status = 'pending' and c.next_retry_at <= ?
          order by f.added_at, c.file_id, c.idx`,
      )
      .all(now) as RawChunk[];
    return rows.map((r) => ({ ...toChunk(r), file: this.file(r.file_id)! }));
  }

  chunkData(fileId: string, index: number): Buffer {
    const row = this.db.prepare('select data from chunks where file_id = ? and idx = ?').get(fileId, index) as
      | { data: Buffer | null }
      | undefined;
    if (!row?.data) throw new Error(`chunk ${index} of ${fileId} has no data`);
    return row.data;
  }

  file(id: string): BufferedFile | undefined {
    const r = this.db.prepare('select * from files where id = ?').get(id) as
      | Record<string, unknown>
      | undefined;
    if (!r) return undefined;
    return {
      id: String(r.id),
      name: String(r.name),
      sourcePath: String(r.source_path),
      size: Number(r.size),
      chunkSize: Number(r.chunk_size),
      totalChunks: Number(r.total_chunks),
      addedAt: Number(r.added_at),
      completedAt: r.completed_at === null ? null : Number(r.completed_at),
      actualFilename: r.actual_filename === null ? null : String(r.actual_filename),
      envelope:
        r.session_id === null || r.session_id === undefined
          ? null
          : { sessionId: String(r.session_id), kid: String(r.kid), wrappedKey: r.wrapped_key as Buffer },
    };
  }

  files(): BufferedFile[] {
    const ids = this.db.prepare('select id from files order by added_at').all() as { id: string }[];
    return ids.map((r) => this.file(r.id)!);
  }

  chunks(fileId: string): ChunkRow[] {
    return (
      this.db.prepare('select * from chunks where file_id = ? order by idx').all(fileId) as RawChunk[]
    ).map(toChunk);
  }

  markUploaded(fileId: string, index: number, at: number): void {
    this.db
      .prepare("update chunks set status = 'uploaded', last_attempt_at = ? where file_id = ? and idx = ?")
      .run(at, fileId, index);
  }

  /** The server has the whole file: chunks are confirmed and their bytes dropped. */
  markConfirmed(fileId: string, at: number, actualFilename: string | null): void {
    this.db.transaction(() => {
      this.db.prepare("update chunks set status = 'confirmed', data = null where file_id = ?").run(fileId);
      this.db
        .prepare('update files set completed_at = ?, actual_filename = ? where id = ?')
        .run(at, actualFilename, fileId);
    })();
  }

  markFailedAttempt(
    fileId: string,
    index: number,
    at: number,
    error: string,
    nextRetryAt: number,
    giveUp: boolean,
  ): ChunkRow {
    const row = this.db
      .prepare('select errors, retry_count from chunks where file_id = ? and idx = ?')
      .get(fileId, index) as {
      errors: string;
      retry_count: number;
    };
    const errors = [...(JSON.parse(row.errors) as string[]), error].slice(-5);
    this.db
      .prepare(
        'update chunks set status = ?, retry_count = ?, last_attempt_at = ?, next_retry_at = ?, errors = ? where file_id = ? and idx = ?',
      )
      .run(
        giveUp ? 'failed' : 'pending',
        row.retry_count + 1,
        at,
        nextRetryAt,
        JSON.stringify(errors),
        fileId,
        index,
      );
    return this.chunks(fileId).find((c) => c.index === index)!;
  }

  /** Holds back a file's other pending chunks until `until` (after one of them failed). */
  deferFile(fileId: string, until: number): void {
    this.db
      .prepare(
        "update chunks set next_retry_at = max(next_retry_at, ?) where file_id = ? and status = 'pending'",
      )
      .run(until, fileId);
  }

  /** Earliest time a pending chunk is due, or undefined when none is pending. */
  nextDue(): number | undefined {
    const r = this.db
      .prepare("select min(next_retry_at) as t from chunks where status = 'pending'")
      .get() as { t: number | null };
    return r.t ?? undefined;
  }

  removeFile(fileId: string): void {
    this.db.prepare('delete from files where id = ?').run(fileId);
  }

  close(): void {
    this.db.close();
  }
}
