import { createWriteStream } from 'node:fs';
import { connect } from 'node:net';
import path from 'node:path';
import type { BlobStore } from '@qlab/blob-store';
import { type EmbeddedBroker, Outbox, OutboxPublisher } from '@qlab/events';
import { type Knex, type Listening, listen, openDatabase, parseDbUrl, silentLogger } from '@qlab/kit';
import { pgSchemaUrl, tempDir } from '@qlab/testkit';
import archiver from 'archiver';
import { type ComposedStore, compose } from '../src/compose';
import { type CalibrationEvents, calibrationEvents } from '../src/events';
import type { ArchiveBlobs } from '../src/storage/archive-blobs';
import { migrations } from '../src/storage/migrations';

export type Engine = ({ name: 'sqlite' } | { name: 'postgres'; url: string }) & {
  /** The archives' blob store (default: files under the data dir); `label` names the pair. */
  blobStore?: () => BlobStore;
  label?: string;
};

export interface StoreOptions {
  engine?: Engine;
  apiToken?: string;
  adminToken?: string;
  maxUploadBytes?: number;
  jsonDownloadMaxBytes?: number;
  broker?: EmbeddedBroker;
  /** Reuse a data dir (restart tests). */
  dir?: string;
  /** A database another store uses (a second replica): not dropped at close. */
  sharedDbUrl?: string;
}

export interface RunningStore {
  url: string;
  app: ComposedStore['app'];
  knex: Knex;
  blobs: ArchiveBlobs;
  dir: string;
  server: Listening;
  close(): Promise<void>;
}

/** A real calibration store on port 0, with its own temp data dir (and PostgreSQL schema). */
export async function startStore(options: StoreOptions = {}): Promise<RunningStore> {
  const tmp = options.dir ? { dir: options.dir, cleanup: () => undefined } : tempDir('qlab-cal-');
  const engine = options.engine ?? { name: 'sqlite' };
  let schema: string | undefined;
  let dbUrl = path.join(tmp.dir, 'qibo.db');
  if (options.sharedDbUrl) dbUrl = options.sharedDbUrl;
  else if (engine.name === 'postgres') {
    const s = pgSchemaUrl(engine.url);
    schema = s.schema;
    dbUrl = s.url;
  }
  const knex = await openDatabase({ target: parseDbUrl(dbUrl), migrations });
  let publisher: OutboxPublisher | undefined;
  let outbox: Outbox<CalibrationEvents> | undefined;
  if (options.broker) {
    const p = new OutboxPublisher({
      knex,
      mqttUrl: options.broker.url,
      clientId: `cal-test-${Math.random()}`,
      pollMs: 50,
    });
    p.start();
    publisher = p;
    outbox = new Outbox(calibrationEvents, () => p.kick());
  }
  const { app, blobs } = await compose(
    {
      dataDir: tmp.dir,
      apiToken: options.apiToken,
      adminToken: options.adminToken ?? options.apiToken,
      maxUploadBytes: options.maxUploadBytes ?? 50 * 1024 * 1024,
      jsonDownloadMaxBytes: options.jsonDownloadMaxBytes ?? 10 * 1024 * 1024,
    },
    { knex, logger: silentLogger(), outbox, blobStore: engine.blobStore?.() },
  );
  const server = await listen(app, { port: 0 });
  return {
    url: server.url,
    app,
    knex,
    blobs,
    dir: tmp.dir,
    server,
    async close() {
      await server.close();
      await publisher?.stop();
      if (schema) await knex.raw('drop schema if exists ?? cascade', [schema]);
      await knex.destroy();
      if (!options.dir) tmp.cleanup();
    },
  };
}

/** Writes a zip with the given entries to `file`. */
export async function makeZip(file: string, entries: Record<string, string | Buffer>): Promise<string> {
  const archive = archiver('zip', { zlib: { level: 1 } });
  const out = createWriteStream(file);
  const done = new Promise<void>((resolve, reject) => {
    out.on('close', () => resolve());
    archive.on('error', reject);
  });
  archive.pipe(out);
  for (const [name, data] of Object.entries(entries)) archive.append(data, { name });
  await archive.finalize();
  await done;
  return file;
}

/** supertest parser that keeps the body as a Buffer. */
export function binary(
  res: import('supertest').Response,
  cb: (err: Error | null, body: Buffer) => void,
): void {
  const chunks: Buffer[] = [];
  const stream = res as unknown as NodeJS.ReadableStream;
  stream.on('data', (c: Buffer) => chunks.push(c));
  stream.on('end', () => cb(null, Buffer.concat(chunks)));
}

/** Row count of a table. */
export async function countRows(knex: Knex, table: string): Promise<number> {
  const row = await knex(table).count({ n: '*' }).first();
  return Number(row?.n ?? 0);
}

/**
 * Sends one request on a raw socket and keeps it open, as curl does (a server that refuses
 * early may close while the body is still going out; the answer is what counts). Resolves with
 * the status, or 0 when nothing came within 3 s.
 */
export function answerOf(url: string, head: string, body: Buffer): Promise<number> {
  const { port } = new URL(url);
  return new Promise((resolve) => {
    const s = connect(Number(port), '127.0.0.1', () => {
      s.write(`${head}Content-Length: ${body.length}\r\n\r\n`);
      s.write(body);
    });
    let got = '';
    s.on('data', (d) => {
      got += d.toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(got);
      if (m && got.includes('\r\n\r\n')) {
        s.destroy();
        resolve(Number(m[1]));
      }
    });
    s.on('error', () => undefined);
    s.on('close', () => resolve(/^HTTP\/1\.1 (\d{3})/.exec(got) ? Number(got.slice(9, 12)) : -1));
    s.setTimeout(3000, () => {
      s.destroy();
      resolve(0);
    });
  });
}
