import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from '@qlab/testkit';
import Database from 'better-sqlite3';
import { KEY, type RunningUploads, startUploads } from 'chunked-upload/testing';
import { IndexedCPClient } from '../src';

describe('IndexedCPClient with encryption: true', () => {
  const tmp = tempDir('qlab-icp-enc-');
  let up: RunningUploads | undefined;
  let n = 0;
  const dbPath = () => path.join(tmp.dir, `client-${n++}.db`);
  beforeAll(() => {
    process.env.INDEXEDCP_LOG_LEVEL = 'silent';
  });
  afterAll(() => {
    delete process.env.INDEXEDCP_LOG_LEVEL;
    tmp.cleanup();
  });
  afterEach(async () => {
    await up?.close();
    up = undefined;
  });

  function makeFile(size: number) {
    const data = randomBytes(size);
    const file = path.join(tmp.dir, `secret-${n++}.bin`);
    writeFileSync(file, data);
    return { file, data };
  }

  it('seals chunks at rest, works offline after one key fetch, and the server decrypts them', async () => {
    up = await startUploads({ pathMode: 'sanitize', encryption: {} });
    const storagePath = dbPath();
    const client = new IndexedCPClient({
      serverUrl: up.url,
      apiKey: KEY,
      storagePath,
      encryption: true,
      chunkSize: 64 * 1024,
    });
    await client.initialize();
    const key = await client.fetchPublicKey();
    expect(client.getCachedPublicKey()?.kid).toBe(key.kid);

    // Offline from here: no serverUrl, only the cached key.
    const offline = new IndexedCPClient({ apiKey: KEY, storagePath, encryption: true, chunkSize: 64 * 1024 });
    await offline.initialize();
    const { file, data } = makeFile(200_000);
    expect(await offline.addFile(file, { name: 'secret.bin' })).toBe(4);
    expect(offline.getEncryptionStatus()).toMatchObject({
      encryption: true,
      activeSessions: 1,
      pendingPackets: 4,
      cachedKeys: 1,
      currentKeyId: key.kid,
    });
    await offline.close();

    // AC1: the buffer holds ciphertext and a wrapped key only, never the plaintext or the AES key.
    const raw = readFileSync(storagePath);
    expect(raw.includes(data.subarray(0, 64))).toBe(false);
    expect(raw.includes(data.subarray(100_000, 100_064))).toBe(false);

    expect(await client.uploadBufferedFiles()).toEqual({ 'secret.bin': 'complete' });
    expect(readFileSync(path.join(up.uploadDir, 'secret.bin')).equals(data)).toBe(true);
    expect(client.getEncryptionStatus()).toMatchObject({ activeSessions: 0, pendingPackets: 0 });
    await client.close();
  });

  it('reports a tampered buffer and a key the server no longer has, and never writes a byte of them', async () => {
    up = await startUploads({ pathMode: 'sanitize', encryption: {} });
    const storagePath = dbPath();
    const client = new IndexedCPClient({
      serverUrl: up.url,
      apiKey: KEY,
      storagePath,
      encryption: true,
      maxRetries: 0,
    });
    await client.initialize();
    const { file } = makeFile(1000);
    await client.addFile(file, { name: 'tampered.bin' });
    await client.close();
    // Someone with access to the local buffer flips a ciphertext byte.
    const db = new Database(storagePath);
    const row = db.prepare('select data from chunks').get() as { data: Buffer };
    row.data[10] = row.data[10]! ^ 0xff;
    db.prepare('update chunks set data = ?').run(row.data);
    db.close();

    const errors: Error[] = [];
    const reopened = new IndexedCPClient({
      serverUrl: up.url,
      apiKey: KEY,
      storagePath,
      encryption: true,
      maxRetries: 0,
      onUploadError: (e) => errors.push(e),
    });
    await reopened.initialize();
    expect(await reopened.uploadBufferedFiles()).toEqual({ 'tampered.bin': 'failed' });
    expect(errors[0]?.message).toContain('failed authentication');

    await reopened.close();

    // A public key the server does not have (its keys were replaced): it says so, writes nothing.
    const stalePath = dbPath();
    const stale = new IndexedCPClient({
      serverUrl: up.url,
      apiKey: KEY,
      storagePath: stalePath,
      encryption: true,
    });
    await stale.initialize();
    await stale.fetchPublicKey();
    const { file: other } = makeFile(10);
    await stale.addFile(other, { name: 'stale.bin' });
    await stale.close();
    await up.close();
    up = await startUploads({ pathMode: 'sanitize', encryption: {} }); // new data dir, new keys
    const later = new IndexedCPClient({
      serverUrl: up.url,
      apiKey: KEY,
      storagePath: stalePath,
      encryption: true,
      maxRetries: 0,
      onUploadError: (e) => errors.push(e),
    });
    await later.initialize();
    expect(await later.uploadBufferedFiles()).toEqual({ 'stale.bin': 'failed' });
    expect(errors.at(-1)?.message).toContain('GET /public-key');
    await later.close();
    expect(readdirSync(up.uploadDir)).toEqual([]);
  });

  it('needs a public key before it can seal a file', async () => {
    const client = new IndexedCPClient({ storagePath: dbPath(), encryption: true });
    await client.initialize();
    const { file } = makeFile(10);
    await expect(client.addFile(file)).rejects.toThrow('fetchPublicKey');
    expect(client.status()).toEqual([]);
    await client.close();
  });
});
