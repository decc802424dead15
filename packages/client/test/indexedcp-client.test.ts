import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import path from 'node:path';
import { closedPort, tempDir } from '@qlab/testkit';
import { KEY, type RunningUploads, startUploads } from 'chunked-upload/testing';
import { type Clock, IndexedCPClient, retryDelay, type UploadProgressEvent } from '../src';

/** A clock whose sleep returns at once and advances time; `onSleep` can change the world meanwhile. */
function fakeClock(onSleep?: (ms: number) => Promise<void>) {
  const sleeps: number[] = [];
  let t = 1_000_000;
  const clock: Clock = {
    now: () => t,
    sleep: async (ms) => {
      sleeps.push(ms);
      t += ms;
      await onSleep?.(ms);
    },
  };
  return { clock, sleeps, now: () => t };
}

describe('IndexedCPClient', () => {
  // Its log is tested in seed-storage.test.ts; here it would only be noise.
  beforeAll(() => {
    process.env.INDEXEDCP_LOG_LEVEL = 'silent';
  });
  afterAll(() => {
    delete process.env.INDEXEDCP_LOG_LEVEL;
  });
  const tmp = tempDir('qlab-icp-client-');
  let up: RunningUploads | undefined;
  afterEach(async () => {
    await up?.close();
    up = undefined;
  });
  afterAll(() => tmp.cleanup());
  let n = 0;
  const dbPath = () => path.join(tmp.dir, `client-${n++}.db`);

  function makeFile(size: number): { file: string; data: Buffer } {
    const data = randomBytes(size);
    const file = path.join(tmp.dir, `input-${n++}.bin`);
    writeFileSync(file, data);
    return { file, data };
  }

  it('computes the seed backoff: 1 s, 2 s, 4 s … capped at 60 s', () => {
    const p = { initialRetryDelay: 1000, maxRetryDelay: 60_000, retryMultiplier: 2, maxRetries: Infinity };
    expect([1, 2, 3, 4, 5, 6, 7, 8].map((r) => retryDelay(p, r))).toEqual([
      1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000,
    ]);
  });

  it('buffers files offline and uploads them when the server comes up', async () => {
    const { file, data } = makeFile(2.5 * 1024 * 1024);
    const port = await closedPort();
    const dir = tempDir('qlab-icp-srv-');
    const fake = fakeClock(async () => {
      // The server comes up while the client waits out its first backoff.
      up ??= await startUploads({ pathMode: 'sanitize', dir: dir.dir, port });
    });
    const events: UploadProgressEvent[] = [];
    const client = new IndexedCPClient({
      serverUrl: `http://127.0.0.1:${port}`,
      apiKey: KEY,
      storagePath: dbPath(),
      clock: fake.clock,
      onUploadProgress: (e) => events.push(e),
    });
    await client.initialize();
    expect(await client.addFile(file, { name: 'offline.bin' })).toBe(3);
    const result = await client.uploadBufferedFiles();
    expect(result).toEqual({ 'offline.bin': 'complete' });
    expect(fake.sleeps).toEqual([1000]);
    expect(events[0]).toMatchObject({ status: 'failed', chunkIndex: 0, retryCount: 1, nextRetryIn: 1000 });
    expect(events.filter((e) => e.status === 'uploaded').map((e) => e.chunkIndex)).toEqual([0, 1, 2]);
    expect(readFileSync(path.join(up!.uploadDir, 'offline.bin')).equals(data)).toBe(true);
    const [state] = client.status();
    expect(state!.file.completedAt).not.toBeNull();
    expect(state!.chunks.map((c) => c.status)).toEqual(['confirmed', 'confirmed', 'confirmed']);
    await client.close();
    dir.cleanup();
  });

  it('retries with exponential backoff, keeps the last 5 errors, and gives up after maxRetries', async () => {
    // A test double that always fails.
    let calls = 0;
    const failing: Server = createServer((req, res) => {
      calls++;
      req.resume();
      res
        .writeHead(503, { 'content-type': 'application/problem+json' })
        .end(JSON.stringify({ detail: `busy ${calls}` }));
    });
    await new Promise<void>((r) => failing.listen(0, '127.0.0.1', r));
    const port = (failing.address() as { port: number }).port;
    const fake = fakeClock();
    const events: UploadProgressEvent[] = [];
    const client = new IndexedCPClient({
      serverUrl: `http://127.0.0.1:${port}`,
      storagePath: dbPath(),
      clock: fake.clock,
      maxRetries: 6,
      initialRetryDelay: 1000,
      retryMultiplier: 3,
      maxRetryDelay: 20_000,
      onUploadProgress: (e) => events.push(e),
    });
    await client.initialize();
    const { file } = makeFile(100);
    await client.addFile(file);
    const result = await client.uploadBufferedFiles();
    expect(Object.values(result)).toEqual(['failed']);
    expect(calls).toBe(7);
    expect(fake.sleeps).toEqual([1000, 3000, 9000, 20000, 20000, 20000]);
    const chunk = client.status()[0]!.chunks[0]!;
    expect(chunk).toMatchObject({ status: 'failed', retryCount: 7 });
    expect(chunk.errors).toEqual(
      ['busy 3', 'busy 4', 'busy 5', 'busy 6', 'busy 7'].map((d) => `HTTP 503: ${d}`),
    );
    expect(chunk.lastAttemptAt).toBe(fake.now());
    expect(events.at(-1)).toMatchObject({ status: 'gave-up', retryCount: 7 });
    expect(events.at(-2)).toMatchObject({ status: 'failed', retryCount: 6, nextRetryIn: 20000 });
    await client.close();
    await new Promise((r) => failing.close(r));
  });

  it('survives a client restart and uploads in the background until stopped', async () => {
    up = await startUploads({ pathMode: 'sanitize' });
    const storagePath = dbPath();
    const { file, data } = makeFile(300_000);
    let client = new IndexedCPClient({ serverUrl: up.url, apiKey: KEY, storagePath, chunkSize: 64 * 1024 });
    await client.initialize();
    await client.addFile(file, { name: 'bg.bin' });
    await client.close();

    let completed = false;
    const answers: number[] = [];
    const uploadUrl = `${up.url}/upload`;
    client = new IndexedCPClient({
      serverUrl: up.url,
      apiKey: KEY,
      storagePath,
      chunkSize: 64 * 1024,
      onUploadComplete: () => (completed = true),
      onAfterResponse: ({ status, url }) => {
        expect(url).toBe(uploadUrl);
        answers.push(status);
      },
    });
    await client.initialize();
    expect(client.status()[0]!.chunks.every((c) => c.status === 'pending')).toBe(true);
    await client.startUploadBackground(up.url, 20);
    const until = Date.now() + 10_000;
    while (!completed && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    await client.stopUploadBackground();
    expect(completed).toBe(true);
    // One answer per chunk (300,000 bytes in 64 KiB chunks), each seen before it was judged.
    expect(answers).toEqual([200, 200, 200, 200, 200]);
    expect(readFileSync(path.join(up.uploadDir, 'bg.bin')).equals(data)).toBe(true);
    await client.close();
  });
});
