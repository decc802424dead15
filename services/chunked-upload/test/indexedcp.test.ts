import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import request from 'supertest';
import { HOSTILE_NAMES } from './fixtures';
import { auth, KEY2, type RunningUploads, sha256, startUploads, utf8Header, walk } from './helpers';

describe('IndexedCP protocol', () => {
  let up: RunningUploads;
  afterEach(async () => up?.close());

  const chunk = (name: string, index: number, body: Buffer, extra: Record<string, string> = {}) =>
    request(up.app)
      .post('/upload')
      .set(auth)
      .set('X-Chunk-Index', String(index))
      .set('X-File-Name', utf8Header(name))
      .set(extra)
      .type('application/octet-stream')
      .send(body);

  it('answers the seed curl example and writes the chunk in place', async () => {
    up = await startUploads();
    const body = randomBytes(1000);
    // Exactly what `curl --data-binary @chunk_0.bin` sends, urlencoded content type included.
    const raw = await fetch(`${up.url}/upload`, {
      method: 'POST',
      headers: {
        Authorization: 'Bearer test-key-1',
        'X-Chunk-Index': '0',
        'X-File-Name': 'document.pdf',
        'Content-Type': 'application/x-www-form-urlencoded',
      },
      body,
    });
    expect(raw.status).toBe(200);
    const res = { body: (await raw.json()) as { actualFilename: string } };
    expect(res.body).toMatchObject({
      message: 'Chunk received',
      chunkIndex: 0,
      clientFilename: 'document.pdf',
    });
    expect(res.body.actualFilename).toMatch(/^\d+_[0-9a-f]{8}_document\.pdf$/);
    const second = randomBytes(500);
    await chunk('document.pdf', 1, second).expect(200);
    const file = readFileSync(path.join(up.uploadDir, res.body.actualFilename));
    expect(file.equals(Buffer.concat([body, second]))).toBe(true);
  });

  it('accepts chunks out of order and repeated, stores each once, and completes exactly once', async () => {
    up = await startUploads({ pathMode: 'sanitize' });
    const parts = [randomBytes(3000), randomBytes(3000), randomBytes(1234)];
    const headers = { 'X-Chunk-Total': '3', 'X-Upload-Id': 'u-1' };
    const r2 = await chunk('data.csv', 2, parts[2]!, headers).expect(200);
    expect(r2.body).toMatchObject({ receivedChunks: 0, complete: false });
    await chunk('data.csv', 0, parts[0]!, headers).expect(200);
    const again = await chunk('data.csv', 0, parts[0]!, headers).expect(200);
    expect(again.body.message).toBe('Chunk already received');
    expect(existsSync(path.join(up.uploadDir, 'data.csv'))).toBe(false); // published only when whole
    const done = await chunk('data.csv', 1, parts[1]!, {
      ...headers,
      'X-Chunk-SHA256': sha256(parts[1]!),
    }).expect(200);
    expect(done.body).toMatchObject({
      complete: true,
      receivedChunks: 3,
      bytesReceived: 7234,
      actualFilename: 'data.csv',
    });
    expect(readFileSync(path.join(up.uploadDir, 'data.csv')).equals(Buffer.concat(parts))).toBe(true);
    // A late repeat for a finished upload is recognised; nothing new starts.
    const late = await chunk('data.csv', 2, parts[2]!, headers).expect(200);
    expect(late.body).toMatchObject({
      message: 'Chunk already received',
      complete: true,
      actualFilename: 'data.csv',
    });
    await chunk('data.csv', 3, parts[2]!, { ...headers, 'X-Chunk-Total': '4' }).expect(409);
    expect(walk(up.uploadDir)).toEqual(['data.csv']);
    const outbox = await up.knex('event_outbox').count({ n: '*' }).first();
    expect(Number(outbox?.n)).toBe(0); // events are off without a broker
    expect(await up.files.stagingEntries()).toEqual(
      expect.not.arrayContaining([expect.stringMatching(/\.chunks$/)]),
    );
  });

  it('refuses a repeated chunk with other content and a wrong checksum, changing nothing', async () => {
    up = await startUploads();
    const a = randomBytes(100);
    const h = { 'X-Chunk-Total': '2', 'X-Upload-Id': 'u-2' };
    await chunk('f.bin', 0, a, h).expect(200);
    const diff = await chunk('f.bin', 0, randomBytes(100), h).expect(409);
    expect(diff.body.detail).toContain('different content');
    const b = randomBytes(100);
    const bad = await chunk('f.bin', 1, b, { ...h, 'X-Chunk-SHA256': sha256(a) }).expect(400);
    expect(bad.body.code).toBe('CHECKSUM_MISMATCH');
    const ok = await chunk('f.bin', 1, b, { ...h, 'X-Chunk-SHA256': sha256(b) }).expect(200);
    expect(ok.body.complete).toBe(true);
    expect(readFileSync(path.join(up.uploadDir, ok.body.actualFilename)).equals(Buffer.concat([a, b]))).toBe(
      true,
    );
  });

  it('treats a repeated lone chunk 0 as a retry and a new chunk 0 as a new file (seed clients)', async () => {
    up = await startUploads({ pathMode: 'sanitize' });
    const a = randomBytes(50);
    const first = await chunk('log.txt', 0, a).expect(200);
    const retry = await chunk('log.txt', 0, a).expect(200);
    expect(retry.body).toMatchObject({ message: 'Chunk already received', uploadId: first.body.uploadId });
    await chunk('log.txt', 1, a).expect(200);
    const fresh = await chunk('log.txt', 0, a).expect(200);
    expect(fresh.body.uploadId).not.toBe(first.body.uploadId);
    expect(fresh.body.actualFilename).toMatch(/^log_\d+\.txt$/);
    expect(walk(up.uploadDir).sort()).toEqual(['log.txt', fresh.body.actualFilename].sort());
  });

  it('needs a valid API key (any of several) and keeps health open', async () => {
    up = await startUploads();
    await request(up.app).get('/health').expect(200);
    await request(up.app)
      .post('/upload')
      .set('X-Chunk-Index', '0')
      .set('X-File-Name', 'a')
      .send('x')
      .expect(401);
    await request(up.app)
      .post('/upload')
      .set('Authorization', 'Bearer nope')
      .set('X-Chunk-Index', '0')
      .set('X-File-Name', 'a')
      .send('x')
      .expect(401);
    await request(up.app)
      .post('/upload')
      .set('Authorization', `Bearer ${KEY2}`)
      .set('X-Chunk-Index', '0')
      .set('X-File-Name', 'a')
      .type('application/octet-stream')
      .send('x')
      .expect(200);
  });

  it('refuses missing or malformed headers and oversize bodies', async () => {
    up = await startUploads({ maxBytes: 10_000 });
    await request(up.app).post('/upload').set(auth).set('X-File-Name', 'a').send('x').expect(400);
    await request(up.app)
      .post('/upload')
      .set(auth)
      .set('X-Chunk-Index', '0')
      .set('X-File-Name', 'a'.repeat(5000))
      .send('x')
      .expect(400);
    await request(up.app)
      .post('/upload')
      .set(auth)
      .set('X-Chunk-Index', '-1')
      .set('X-File-Name', 'a')
      .send('x')
      .expect(400);
    await chunk('a', 3, Buffer.from('x'), { 'X-Chunk-Total': '2' }).expect(400);
    await chunk('a', 0, Buffer.from('x'), { 'X-Chunk-SHA256': 'zz' }).expect(400);
    const big = await chunk('big', 0, randomBytes(20_000)).expect(413);
    expect(big.body.detail).toContain('UPLOAD_MAX_BYTES');
    // Two chunks that together pass the limit.
    await chunk('sum', 0, randomBytes(6000), { 'X-Upload-Id': 's' }).expect(200);
    await chunk('sum', 1, randomBytes(6000), { 'X-Upload-Id': 's' }).expect(413);
  });

  it.each(['ignore', 'sanitize', 'allow-paths'] as const)(
    'keeps every hostile name inside the upload dir (%s)',
    async (mode) => {
      up = await startUploads({ pathMode: mode });
      for (const name of HOSTILE_NAMES) {
        if (/[\u0000-\u001f]/.test(name)) continue; // HTTP clients cannot send these in headers at all
        const res = await chunk(name, 0, Buffer.from('payload'), { 'X-Chunk-Total': '1' });
        expect([name, [200, 400].includes(res.status)]).toEqual([name, true]);
      }
      // Nothing was written anywhere but the upload dir and the service's own data dir.
      const all = walk(up.dir).filter(
        (p) => !p.startsWith('data/') && p !== 'uploads.db' && !p.startsWith('uploads.db-'),
      );
      for (const p of all) expect(p.startsWith('files/')).toBe(true);
      for (const p of walk(up.uploadDir)) {
        expect(p).not.toMatch(/(^|\/)\.\.(\/|$)/);
        if (mode !== 'allow-paths') expect(p).not.toContain('/');
      }
    },
  );

  it('never lets two active uploads write one target', async () => {
    up = await startUploads({ pathMode: 'allow-paths' });
    await chunk('runs/a.bin', 0, Buffer.from('1'), { 'X-Chunk-Total': '2', 'X-Upload-Id': 'one' }).expect(
      200,
    );
    const clash = await chunk('runs/a.bin', 0, Buffer.from('2'), {
      'X-Chunk-Total': '2',
      'X-Upload-Id': 'two',
    }).expect(409);
    expect(clash.body.detail).toContain('in progress');
  });

  it('reports server info and sessions, and clears them', async () => {
    up = await startUploads({ pathMode: 'sanitize' });
    await chunk('a.txt', 0, Buffer.from('a'), { 'X-Chunk-Total': '2', 'X-Upload-Id': 'x' }).expect(200);
    const info = await request(up.app).get('/info').set(auth).expect(200);
    expect(info.body).toMatchObject({
      port: up.server.port,
      upload_dir: up.uploadDir,
      path_mode: 'sanitize',
      api_keys_count: 2,
      encryption: false,
      active_sessions: 1,
    });
    const sessions = await request(up.app).get('/sessions').set(auth).expect(200);
    expect(sessions.body.items[0]).toMatchObject({
      clientFilename: 'a.txt',
      receivedChunks: 1,
      totalChunks: 2,
    });
    expect((await request(up.app).delete('/sessions').set(auth).expect(200)).body).toEqual({ cleared: 1 });
    expect((await request(up.app).get('/info').set(auth)).body.active_sessions).toBe(0);
    expect(walk(path.join(up.dir, 'data', 'staging'))).toEqual([]);
    const list = await request(up.app).get('/uploads?status=expired&q=a.t').set(auth).expect(200);
    expect(list.body.total).toBe(1);
    await request(up.app).get('/uploads?status=weird').set(auth).expect(400);
  });
});
