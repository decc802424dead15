import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import path from 'node:path';
import { type BackoffPolicy, type Clock, DEFAULT_BACKOFF, realClock, retryDelay } from './backoff';
import { type BufferedFile, ChunkStore } from './chunk-store';
import { type ClientLog, createClientLog } from './client-log';
import { newSessionId, newSessionKey, sealPacket, wrapSessionKey } from './envelope';

export interface UploadProgressEvent {
  fileName: string;
  chunkIndex: number;
  totalChunks: number;
  status: 'uploaded' | 'failed' | 'gave-up';
  retryCount: number;
  /** Milliseconds until the next attempt (failed chunks). */
  nextRetryIn?: number;
  error?: string;
}

export interface UploadSummary {
  /** File name → "complete", "uploading", "pending" or "failed". */
  files: Record<string, string>;
  uploadedChunks: number;
  failedChunks: number;
}

export interface IndexedCPClientOptions extends Partial<BackoffPolicy> {
  /** Server base URL, e.g. http://127.0.0.1:3000. */
  serverUrl?: string;
  /** API key; default INDEXEDCP_API_KEY. */
  apiKey?: string;
  /** SQLite buffer; default ~/.indexcp/db/client.db. */
  storagePath?: string;
  /** Bytes per chunk. Default 1 MiB. */
  chunkSize?: number;
  onUploadProgress?: (event: UploadProgressEvent) => void;
  onUploadError?: (error: Error) => void;
  onUploadComplete?: (summary: UploadSummary) => void;
  /** Called with every chunk answer's status before it is judged (as tus-js-client's onAfterResponse). */
  onAfterResponse?: (answer: { status: number; url: string }) => void;
  /**
   * Encrypt chunks before they are buffered (the original's `encryption: true`): only sealed
   * packets and the wrapped session key are stored, and they go to POST /upload-encrypted.
   * Needs the server's public key once (fetchPublicKey, or serverUrl at addFile); then works offline.
   */
  encryption?: boolean;
  /** trace, debug, info (default), warn, error, fatal or silent; default INDEXEDCP_LOG_LEVEL. */
  logLevel?: string;
  /** Injected time source (tests). */
  clock?: Clock;
}

/**
 * The seed's IndexedCPClient: files are split into chunks and buffered in SQLite (works
 * offline, survives restarts), then sent with X-Chunk-Index/X-File-Name plus X-Chunk-Total,
 * X-Chunk-SHA256 and a stable X-Upload-Id, retried with exponential backoff. Chunk status goes
 * pending → uploaded (server took it) → confirmed (server has the whole file).
 */
export class IndexedCPClient implements AsyncDisposable {
  private store: ChunkStore | undefined;
  private readonly options: Required<Pick<IndexedCPClientOptions, 'chunkSize' | 'storagePath'>> &
    IndexedCPClientOptions;
  private readonly backoff: BackoffPolicy;
  private readonly clock: Clock;
  private background: { stop: boolean; done: Promise<void>; wake: () => void } | undefined;
  private readonly log: ClientLog;

  constructor(options: IndexedCPClientOptions = {}) {
    this.options = {
      ...options,
      chunkSize: options.chunkSize ?? 1024 * 1024,
      storagePath: options.storagePath ?? path.join(homedir(), '.indexcp', 'db', 'client.db'),
      // The one place the library reads the environment, as the seed's client does (its README:
      // "api_key=None, # API key (or set INDEXEDCP_API_KEY env var)"; the log level likewise).
      apiKey: options.apiKey ?? process.env.INDEXEDCP_API_KEY,
    };
    if (!Number.isInteger(this.options.chunkSize) || this.options.chunkSize < 1)
      throw new Error('chunkSize must be a positive integer');
    this.backoff = {
      initialRetryDelay: options.initialRetryDelay ?? DEFAULT_BACKOFF.initialRetryDelay,
      maxRetryDelay: options.maxRetryDelay ?? DEFAULT_BACKOFF.maxRetryDelay,
      retryMultiplier: options.retryMultiplier ?? DEFAULT_BACKOFF.retryMultiplier,
      maxRetries: options.maxRetries ?? DEFAULT_BACKOFF.maxRetries,
    };
    this.clock = options.clock ?? realClock;
    this.log = createClientLog('[IndexedCPClient]', options.logLevel);
  }

  async initialize(): Promise<void> {
    this.store ??= new ChunkStore(this.options.storagePath);
  }

  private db(): ChunkStore {
    if (!this.store) throw new Error('call initialize() first');
    return this.store;
  }

  /** Reads a file into the buffer, chunk by chunk; works without a server. Returns the chunk count. */
  async addFile(filePath: string, options: { name?: string } = {}): Promise<number> {
    const info = await stat(filePath);
    if (!info.isFile()) throw new Error(`${filePath} is not a file`);
    const chunkSize = this.options.chunkSize;
    const total = Math.max(1, Math.ceil(info.size / chunkSize));
    const now = this.clock.now();
    let seal: ((data: Buffer, seq: number) => ReturnType<typeof sealPacket>) | undefined;
    let envelope: BufferedFile['envelope'] = null;
    if (this.options.encryption) {
      const publicKey = await this.publicKeyForNewStream();
      // The session key lives only while the file is sealed; the buffer keeps it wrapped.
      const sessionKey = newSessionKey();
      const sessionId = newSessionId();
      envelope = {
        sessionId,
        kid: publicKey.kid,
        wrappedKey: wrapSessionKey(sessionKey, publicKey.publicKey),
      };
      seal = (data, seq) => sealPacket(data, sessionKey, sessionId, seq, now);
    }
    const fd = openSync(filePath, 'r');
    function* chunks() {
      for (let i = 0; i < total; i++) {
        const buf = Buffer.alloc(Math.min(chunkSize, info.size - i * chunkSize));
        readSync(fd, buf, 0, buf.length, i * chunkSize);
        const sealed = seal?.(buf, i);
        const data = sealed ? sealed.ciphertext : buf;
        yield { data, sha256: createHash('sha256').update(data).digest('hex'), seal: sealed };
      }
    }
    try {
      this.db().addFile(
        {
          name: options.name ?? path.basename(filePath),
          sourcePath: path.resolve(filePath),
          size: info.size,
          chunkSize,
          totalChunks: total,
          addedAt: now,
          envelope,
        },
        chunks(),
      );
    } finally {
      closeSync(fd);
    }
    this.log.info(`File ${filePath} ${envelope ? 'encrypted and ' : ''}added to buffer with ${total} chunks`);
    return total;
  }

  /** Fetches the server's public key (GET /public-key) and caches it for offline use. */
  async fetchPublicKey(
    serverUrl = this.options.serverUrl,
  ): Promise<{ kid: string; publicKey: string; expiresAt: number }> {
    if (!serverUrl) throw new Error('no serverUrl to fetch the public key from');
    const res = await fetch(`${serverUrl.replace(/\/+$/, '')}/public-key`, {
      headers: this.options.apiKey ? { Authorization: `Bearer ${this.options.apiKey}` } : {},
      signal: AbortSignal.timeout(30_000),
    });
    if (!res.ok) throw new Error(`could not fetch the public key: HTTP ${res.status}`);
    const key = (await res.json()) as { kid?: unknown; publicKey?: unknown; expiresAt?: unknown };
    if (typeof key.kid !== 'string' || typeof key.publicKey !== 'string' || typeof key.expiresAt !== 'number')
      throw new Error('the server answered GET /public-key without kid, publicKey and expiresAt');
    const cached = { kid: key.kid, publicKey: key.publicKey, expiresAt: key.expiresAt };
    this.db().cachePublicKey(cached, this.clock.now());
    this.log.info(`Fetched and cached server public key (kid: ${cached.kid})`);
    return cached;
  }

  /** The cached public key for new streams, or undefined (offline and never fetched, or expired). */
  getCachedPublicKey(): { kid: string; publicKey: string; expiresAt: number } | undefined {
    return this.db().cachedPublicKey(this.clock.now());
  }

  private async publicKeyForNewStream() {
    const cached = this.getCachedPublicKey();
    if (cached) return cached;
    if (!this.options.serverUrl)
      throw new Error('no public key cached: call fetchPublicKey() once while the server is reachable');
    return this.fetchPublicKey();
  }

  /** The original's getEncryptionStatus. */
  getEncryptionStatus(): {
    encryption: boolean;
    activeSessions: number;
    pendingPackets: number;
    cachedKeys: number;
    currentKeyId: string | null;
  } {
    const files = this.status().filter((f) => f.file.envelope !== null);
    return {
      encryption: this.options.encryption === true,
      activeSessions: files.filter((f) => f.file.completedAt === null).length,
      pendingPackets: files.reduce((n, f) => n + f.chunks.filter((c) => c.status === 'pending').length, 0),
      cachedKeys: this.db().cachedKeyCount(),
      currentKeyId: this.getCachedPublicKey()?.kid ?? null,
    };
  }

  /** Buffered files and their chunks' state. */
  status(): { file: BufferedFile; chunks: ReturnType<ChunkStore['chunks']> }[] {
    return this.db()
      .files()
      .map((file) => ({ file, chunks: this.db().chunks(file.id) }));
  }

  private async sendChunk(
    serverUrl: string,
    file: BufferedFile,
    index: number,
    sha256: string,
  ): Promise<{ complete: boolean; actualFilename: string | null }> {
    if (file.envelope) return this.sendSealed(serverUrl, file, index);
    const headers: Record<string, string> = {
      'X-Chunk-Index': String(index),
      'X-Chunk-Total': String(file.totalChunks),
      'X-Chunk-SHA256': sha256,
      'X-Upload-Id': file.id,
      // Header values travel as bytes; send the name's UTF-8 bytes (the server decodes strictly).
      'X-File-Name': Buffer.from(file.name, 'utf8').toString('latin1'),
      'Content-Type': 'application/octet-stream',
    };
    if (this.options.apiKey) headers.Authorization = `Bearer ${this.options.apiKey}`;
    const res = await fetch(`${serverUrl.replace(/\/+$/, '')}/upload`, {
      method: 'POST',
      headers,
      body: this.db().chunkData(file.id, index),
      signal: AbortSignal.timeout(120_000),
    });
    return this.chunkAnswer(res);
  }

  /** One sealed packet, as the original sends it, plus `total` so the server completes at once. */
  private async sendSealed(
    serverUrl: string,
    file: BufferedFile,
    index: number,
  ): Promise<{ complete: boolean; actualFilename: string | null }> {
    const envelope = file.envelope!;
    const seal = this.db().chunkSeal(file.id, index);
    const headers: Record<string, string> = { 'Content-Type': 'application/json' };
    if (this.options.apiKey) headers.Authorization = `Bearer ${this.options.apiKey}`;
    const res = await fetch(`${serverUrl.replace(/\/+$/, '')}/upload-encrypted`, {
      method: 'POST',
      headers,
      body: JSON.stringify({
        sessionId: envelope.sessionId,
        kid: envelope.kid,
        wrappedKey: envelope.wrappedKey.toString('base64'),
        fileName: file.name,
        seq: index,
        total: file.totalChunks,
        ciphertext: this.db().chunkData(file.id, index).toString('base64'),
        iv: seal.iv.toString('base64'),
        authTag: seal.authTag.toString('base64'),
        aad: seal.aad.toString('base64'),
      }),
      signal: AbortSignal.timeout(120_000),
    });
    return this.chunkAnswer(res);
  }

  private async chunkAnswer(res: Response): Promise<{ complete: boolean; actualFilename: string | null }> {
    this.options.onAfterResponse?.({ status: res.status, url: res.url });
    const text = await res.text();
    if (!res.ok) {
      let detail = text.slice(0, 200);
      try {
        detail = (JSON.parse(text) as { detail?: string }).detail ?? detail;
      } catch {
        // not JSON
      }
      throw new Error(`HTTP ${res.status}: ${detail}`);
    }
    const body = JSON.parse(text) as { complete?: boolean; actualFilename?: string };
    return { complete: body.complete === true, actualFilename: body.actualFilename ?? null };
  }

  /** One pass over every due chunk. */
  private async uploadDue(serverUrl: string): Promise<{ uploaded: number; failed: number }> {
    let uploaded = 0;
    let failed = 0;
    const skip = new Set<string>();
    for (const chunk of this.db().dueChunks(this.clock.now())) {
      // After a network failure, leave the rest of that file for its retry time.
      if (skip.has(chunk.fileId)) continue;
      try {
        this.log.debug(`Uploading chunk ${chunk.index} for ${chunk.file.name}`);
        const result = await this.sendChunk(serverUrl, chunk.file, chunk.index, chunk.sha256);
        const now = this.clock.now();
        this.db().markUploaded(chunk.fileId, chunk.index, now);
        uploaded++;
        this.options.onUploadProgress?.({
          fileName: chunk.file.name,
          chunkIndex: chunk.index,
          totalChunks: chunk.file.totalChunks,
          status: 'uploaded',
          retryCount: chunk.retryCount,
        });
        if (result.complete) {
          this.db().markConfirmed(chunk.fileId, now, result.actualFilename);
          this.log.info(
            `Upload complete for ${chunk.file.name} -> Server saved as: ${result.actualFilename}`,
          );
        }
      } catch (err) {
        const now = this.clock.now();
        const retries = chunk.retryCount + 1;
        const giveUp = retries > this.backoff.maxRetries;
        const wait = retryDelay(this.backoff, retries);
        const message = (err as Error).message;
        this.db().markFailedAttempt(chunk.fileId, chunk.index, now, message, now + wait, giveUp);
        // The rest of the file waits as long: the server is most likely unreachable for all of it.
        if (!giveUp) this.db().deferFile(chunk.fileId, now + wait);
        failed++;
        skip.add(chunk.fileId);
        if (giveUp)
          this.log.error(
            `Gave up on ${chunk.file.name} chunk ${chunk.index} after ${retries} attempts: ${message}`,
          );
        else
          this.log.warn(
            `Upload failed for ${chunk.file.name} chunk ${chunk.index} (retry ${retries}). Next retry in ${Math.round(wait / 1000)}s: ${message}`,
          );
        this.options.onUploadProgress?.({
          fileName: chunk.file.name,
          chunkIndex: chunk.index,
          totalChunks: chunk.file.totalChunks,
          status: giveUp ? 'gave-up' : 'failed',
          retryCount: retries,
          nextRetryIn: giveUp ? undefined : wait,
          error: message,
        });
        this.options.onUploadError?.(err as Error);
      }
    }
    return { uploaded, failed };
  }

  private summary(uploadedChunks: number, failedChunks: number): UploadSummary {
    const files: Record<string, string> = {};
    for (const { file, chunks } of this.status()) {
      if (file.completedAt !== null) files[file.name] = 'complete';
      else if (chunks.some((c) => c.status === 'failed')) files[file.name] = 'failed';
      else if (chunks.some((c) => c.status === 'uploaded')) files[file.name] = 'uploading';
      else files[file.name] = 'pending';
    }
    return { files, uploadedChunks, failedChunks };
  }

  /**
   * Sends every buffered chunk, waiting out backoff between attempts, until nothing is pending
   * (each chunk uploaded, or failed after maxRetries). With the default unlimited retries and a
   * server that never comes back, this keeps trying; use startUploadBackground for long waits.
   */
  async uploadBufferedFiles(serverUrl = this.options.serverUrl): Promise<Record<string, string>> {
    if (!serverUrl) throw new Error('no serverUrl');
    let uploaded = 0;
    let failed = 0;
    for (;;) {
      const pass = await this.uploadDue(serverUrl);
      uploaded += pass.uploaded;
      failed += pass.failed;
      const next = this.db().nextDue();
      if (next === undefined) break;
      await this.clock.sleep(Math.max(0, next - this.clock.now()));
    }
    const summary = this.summary(uploaded, failed);
    this.options.onUploadComplete?.(summary);
    return summary.files;
  }

  /** Uploads in the background, checking every checkIntervalMs for due chunks, until stopped. */
  async startUploadBackground(serverUrl = this.options.serverUrl, checkIntervalMs = 5000): Promise<void> {
    if (!serverUrl) throw new Error('no serverUrl');
    if (this.background) return;
    const state: { stop: boolean; done: Promise<void>; wake: () => void } = {
      stop: false,
      done: Promise.resolve(),
      wake: () => undefined,
    };
    state.done = (async () => {
      while (!state.stop) {
        const pass = await this.uploadDue(serverUrl).catch((err) => {
          this.options.onUploadError?.(err as Error);
          return { uploaded: 0, failed: 0 };
        });
        if (pass.uploaded > 0 && this.db().nextDue() === undefined)
          this.options.onUploadComplete?.(this.summary(pass.uploaded, pass.failed));
        if (state.stop) break;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, checkIntervalMs);
          state.wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    })();
    this.background = state;
  }

  async stopUploadBackground(): Promise<void> {
    const bg = this.background;
    if (!bg) return;
    bg.stop = true;
    bg.wake();
    await bg.done;
    this.background = undefined;
  }

  async close(): Promise<void> {
    await this.stopUploadBackground();
    this.store?.close();
    this.store = undefined;
  }

  /** `await using client = new IndexedCPClient(…)` closes it at the end of the block. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
