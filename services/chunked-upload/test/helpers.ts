import { createHash } from 'node:crypto';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { type EmbeddedBroker, Outbox, OutboxPublisher } from '@qlab/events';
import { type Knex, type Listening, listen, openDatabase, parseDbUrl, silentLogger } from '@qlab/kit';
import { pgSchemaUrl, tempDir } from '@qlab/testkit';
import { type ComposedUploads, compose } from '../src/compose';
import type { PathMode } from '../src/domain/path-modes';
import type { UploadService } from '../src/domain/upload-service';
import { type UploadEvents, uploadEvents } from '../src/events';
import type { DataFiles } from '../src/storage/data-files';
import { migrations } from '../src/storage/migrations';
import type { ServerKeys } from '../src/storage/server-keys';

export const KEY = 'test-key-1';
export const KEY2 = 'test-key-2';
/** The token the gateway sends; with it, X-Qlab-Key-Id names the caller. */
export const GATEWAY_TOKEN = 'test-gateway-token';
export const auth = { Authorization: `Bearer ${KEY}` };
export const tus = { ...auth, 'Tus-Resumable': '1.0.0' };

export interface UploadServerOptions {
  pathMode?: PathMode;
  maxBytes?: number;
  expireAfterMs?: number;
  broker?: EmbeddedBroker;
  pgUrl?: string;
  now?: () => number;
  /** Reuse a data dir (restarts); it is then not removed on close. */
  dir?: string;
  /** Listen on this port instead of an ephemeral one. */
  port?: number;
  maxSessionsPerKey?: number;
  maxOpenBytesPerKey?: number;
  idleCompleteAfterMs?: number;
  windowsSafeNames?: boolean;
  /** Encrypted uploads on, with 2048-bit keys (fast to make) in this folder (default: the data dir's). */
  encryption?: { keysDir?: string; maxKeyAgeMs?: number };
}

export interface RunningUploads {
  url: string;
  app: ComposedUploads['app'];
  service: UploadService;
  encryption?: ServerKeys;
  knex: Knex;
  files: DataFiles;
  dir: string;
  uploadDir: string;
  server: Listening;
  close(): Promise<void>;
}

export async function startUploads(options: UploadServerOptions = {}): Promise<RunningUploads> {
  const tmp = options.dir ? { dir: options.dir, cleanup: () => undefined } : tempDir('qlab-up-');
  const pg = options.pgUrl ? pgSchemaUrl(options.pgUrl) : undefined;
  const knex = await openDatabase({
    target: pg ? parseDbUrl(pg.url) : { client: 'sqlite', filename: path.join(tmp.dir, 'uploads.db') },
    migrations,
  });
  let publisher: OutboxPublisher | undefined;
  let outbox: Outbox<UploadEvents> | undefined;
  if (options.broker) {
    const p = new OutboxPublisher({
      knex,
      mqttUrl: options.broker.url,
      clientId: `up-${Math.random()}`,
      pollMs: 50,
    });
    p.start();
    publisher = p;
    outbox = new Outbox(uploadEvents, () => p.kick());
  }
  let port = 0;
  const { app, service, files, encryption, close } = await compose(
    {
      dataDir: path.join(tmp.dir, 'data'),
      uploadDir: path.join(tmp.dir, 'files'),
      apiKeys: [KEY, KEY2],
      gatewayToken: GATEWAY_TOKEN,
      encryption: options.encryption && {
        keysDir: options.encryption.keysDir ?? path.join(tmp.dir, 'keys'),
        keyBits: 2048,
        maxKeyAgeMs: options.encryption.maxKeyAgeMs ?? 90 * 24 * 3600 * 1000,
      },
      policy: {
        pathMode: options.pathMode ?? 'ignore',
        maxBytes: options.maxBytes ?? 64 * 1024 * 1024,
        expireAfterMs: options.expireAfterMs ?? 3_600_000,
        maxSessionsPerKey: options.maxSessionsPerKey,
        maxOpenBytesPerKey: options.maxOpenBytesPerKey,
        idleCompleteAfterMs: options.idleCompleteAfterMs ?? 30_000,
        windowsSafeNames: options.windowsSafeNames,
      },
    },
    { knex, logger: silentLogger(), outbox, now: options.now, port: () => port },
  );
  const server = await listen(app, { port: options.port ?? 0, graceMs: 0 });
  port = server.port;
  return {
    url: server.url,
    app,
    service,
    encryption,
    knex,
    // No blob store is given here: the bytes are local files.
    files: files as DataFiles,
    dir: tmp.dir,
    uploadDir: files.uploadDir,
    server,
    async close() {
      await server.close();
      await publisher?.stop();
      if (pg) await knex.raw('drop schema if exists ?? cascade', [pg.schema]);
      await knex.destroy();
      await close();
      tmp.cleanup();
    },
  };
}

/** Every file under a folder, as relative paths. */
export function walk(dir: string, base = dir): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? walk(p, base) : [path.relative(base, p)];
  });
}

export const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

export function fileSize(p: string): number {
  return statSync(p).size;
}

/** Header value carrying UTF-8 bytes the way an HTTP client puts them on the wire. */
export const utf8Header = (s: string) => Buffer.from(s, 'utf8').toString('latin1');
