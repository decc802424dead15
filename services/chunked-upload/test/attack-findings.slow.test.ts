import { constants, createCipheriv, createPublicKey, publicEncrypt, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { tempDir } from '@qlab/testkit';
import request from 'supertest';
import { targetPathFor } from '../src/domain/path-modes';
import { DataFiles } from '../src/storage/data-files';
import { auth, KEY2, type RunningUploads, startUploads, tus, walk } from './helpers';

/** Each test is one thing an outside attack on the service found (and that now holds). */
describe('chunked-upload against what an attacker found', () => {
  let up: RunningUploads | undefined;
  let t = 1_767_225_600_000;
  afterEach(async () => {
    await up?.close();
    up = undefined;
  });
  const begin = async (options: Parameters<typeof startUploads>[0]) => {
    up = await startUploads(options);
    return up;
  };
  const chunk = (
    s: RunningUploads,
    name: string,
    index: number,
    body: Buffer | string,
    extra: Record<string, string> = {},
  ) =>
    request(s.app)
      .post('/upload')
      .set(auth)
      .set({ 'X-Chunk-Index': String(index), 'X-File-Name': name, ...extra })
      .type('application/octet-stream')
      .send(Buffer.from(body));

  function sealer(pem: string, kid: string, sessionId = randomBytes(16).toString('hex')) {
    const key = randomBytes(32);
    const wrappedKey = publicEncrypt(
      { key: createPublicKey(pem), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
      key,
    ).toString('base64');
    const packet = (data: Buffer, seq: number) => {
      const iv = randomBytes(12);
      const aad = Buffer.from(JSON.stringify({ sessionId, seq, codec: 'raw', timestamp: 1 }));
      const c = createCipheriv('aes-256-gcm', key, iv);
      c.setAAD(aad);
      const ciphertext = Buffer.concat([c.update(data), c.final()]);
      return {
        ciphertext: ciphertext.toString('base64'),
        iv: iv.toString('base64'),
        authTag: c.getAuthTag().toString('base64'),
        aad: aad.toString('base64'),
        seq,
      };
    };
    return { header: { sessionId, kid, wrappedKey }, packet };
  }

  test('a batch packet with fields of its own is refused as it streams, never assembled', async () => {
    const s = await begin({ encryption: {} });
    const { kid, publicKey } = (await request(s.app).get('/public-key')).body;
    const seal = sealer(publicKey, kid);
    const junk = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`f${i}`, 'A'.repeat(100_000)]));
    const res = await request(s.app)
      .post('/upload-encrypted-batch')
      .set(auth)
      .send({
        ...seal.header,
        fileName: 'x.bin',
        packets: [{ ...junk, ...seal.packet(Buffer.from('x'), 0) }],
      })
      .expect(400);
    expect(res.body.detail).toContain('a packet holds only');
    // All characters of one packet count together: many big known fields are too many.
    const big = 'A'.repeat(20 * 1024 * 1024);
    const huge = `{"sessionId":"${seal.header.sessionId}","kid":"${kid}","wrappedKey":"${seal.header.wrappedKey}","packets":[{"ciphertext":"${big}","iv":"${big}"}]}`;
    await request(s.app)
      .post('/upload-encrypted-batch')
      .set(auth)
      .type('application/json')
      .send(huge)
      .expect(413);
  });

  test('a chunk arriving slowly does not hold the idle sweep for other uploads', async () => {
    const s = await begin({ pathMode: 'sanitize', now: () => t, idleCompleteAfterMs: 30_000 });
    await chunk(s, 'victim.bin', 0, 'AAAA').expect(200);
    await chunk(s, 'slow.bin', 0, 'SSSS').expect(200);
    t += 31_000;
    const { port } = new URL(s.url);
    const socket = net.connect(Number(port), '127.0.0.1');
    await new Promise((r) => socket.once('connect', r));
    socket.write(
      `POST /upload HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth.Authorization}\r\nX-Chunk-Index: 1\r\nX-File-Name: slow.bin\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000\r\n\r\nx`,
    );
    await new Promise((r) => setTimeout(r, 200));
    try {
      let timer: NodeJS.Timeout | undefined;
      const swept = await Promise.race([
        s.service.sweepIdle(),
        new Promise((r) => {
          timer = setTimeout(() => r('hung'), 3000);
        }),
      ]);
      clearTimeout(timer);
      expect(swept).toBe(1);
      expect((await s.knex('uploads').where({ client_filename: 'victim.bin' }).first()).status).toBe(
        'complete',
      );
    } finally {
      socket.destroy();
    }
  });

  test('allow-paths: a file and a folder of one name are refused when created, never a 500 later', async () => {
    const s = await begin({ pathMode: 'allow-paths' });
    const meta = `filename ${Buffer.from('reports/data.csv').toString('base64')}`;
    const created = await request(s.app)
      .post('/files')
      .set(tus)
      .set('Upload-Length', '5')
      .set('Upload-Metadata', meta)
      .expect(201);
    for (const name of ['reports', 'reports/']) {
      const r = await chunk(s, name, 0, 'x', { 'X-Chunk-Total': '1' });
      expect([name, r.status]).toEqual([name, 409]);
    }
    await request(s.app)
      .patch(new URL(created.headers.location!).pathname)
      .set(tus)
      .set({ 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' })
      .send(Buffer.from('hello'))
      .expect(204);
    // On disk too: a file "notes" means "notes/x.txt" cannot be made.
    await chunk(s, 'notes', 0, 'x', { 'X-Chunk-Total': '1' }).expect(200);
    const r = await chunk(s, 'notes/x.txt', 0, 'y', { 'X-Chunk-Total': '1' }).expect(409);
    expect(r.body.detail).toContain('"notes" is a file');
    expect(await s.knex('uploads').where({ status: 'terminated' }).count({ n: '*' }).first()).toMatchObject({
      n: 0,
    });
  });

  test('rotation keeps the key it retired for the whole key age, serves keys with a future expiry, and is rate-limited', async () => {
    const dir = tempDir('qlab-keys-');
    const maxKeyAgeMs = 90 * 24 * 3600_000;
    const s = await begin({ encryption: { keysDir: dir.dir, maxKeyAgeMs }, now: () => t });
    t += 91 * 24 * 3600_000; // the active key is old now
    const old = (await request(s.app).get('/public-key')).body;
    expect(old.expiresAt).toBeGreaterThan(t);
    const sealed = sealer(old.publicKey, old.kid);
    await request(s.app)
      .post('/rotate-keys')
      .set({ Authorization: `Bearer ${KEY2}` })
      .expect(200);
    expect((await request(s.app).post('/rotate-keys').set(auth).expect(429)).body.code).toBe(
      'ROTATED_RECENTLY',
    );
    await request(s.app)
      .post('/upload-encrypted')
      .set(auth)
      .send({ ...sealed.header, fileName: 'late.bin', total: 1, ...sealed.packet(Buffer.from('late'), 0) })
      .expect(200);
    expect(readdirSync(dir.dir)).toHaveLength(2);
    dir.cleanup();
  });

  test('ending an unfinished in-place upload removes its partial file', async () => {
    const s = await begin({ pathMode: 'sanitize' });
    await chunk(s, 'gap.bin', 0, 'AAAA').expect(200);
    await chunk(s, 'gap.bin', 2, 'CCCC').expect(200);
    await chunk(s, 'cleared.bin', 0, 'B').expect(200);
    await request(s.app).delete('/sessions?idle_ms=0').set(auth).expect(200);
    expect(walk(s.uploadDir)).toEqual([]);
  });

  test('names that no file system takes, or that hide an encoding, are refused', () => {
    for (const name of [
      'x\ud800.txt',
      '\udc00',
      '％2e％2e％2fetc％2fpasswd',
      '%２Ｆx',
      '﹪00nul',
      'bad\u0085.txt',
      'csi\u009b.txt',
    ])
      expect(() => targetPathFor('sanitize', name)).toThrow();
    for (const name of ['CONIN$', 'conout$.log', 'CLOCK$', 'CON .txt'])
      expect(() => targetPathFor({ mode: 'sanitize', windowsSafe: true }, name)).toThrow('reserved');
  });

  test('an encrypted fileName that is not well-formed is a 400, and session ids fit the upload id', async () => {
    const s = await begin({ encryption: {} });
    const { kid, publicKey } = (await request(s.app).get('/public-key')).body;
    const seal = sealer(publicKey, kid);
    const bad = await request(s.app)
      .post('/upload-encrypted')
      .set(auth)
      .send({ ...seal.header, fileName: 'x\ud800.txt', ...seal.packet(Buffer.from('x'), 0) })
      .expect(400);
    expect(bad.body.code).toBe('PATH_REFUSED');
    const long = sealer(publicKey, kid, 's'.repeat(125));
    await request(s.app)
      .post('/upload-encrypted')
      .set(auth)
      .send({ ...long.header, fileName: 'y.bin', ...long.packet(Buffer.from('x'), 0) })
      .expect(400);
    // Plaintext cannot be slipped into an encrypted stream through POST /upload.
    await chunk(s, 'y.bin', 1, 'PLAIN', { 'X-Upload-Id': `enc-${seal.header.sessionId}` }).expect(400);
  });

  test('an upload dir on another file system than the data dir is refused at start', async () => {
    const shm = '/dev/shm';
    const tmp = tempDir('qlab-fs-');
    if (!existsSync(shm) || statSync(shm).dev === statSync(tmp.dir).dev) {
      console.log('[skip] no second file system (/dev/shm) to test with');
      tmp.cleanup();
      return;
    }
    const otherDir = mkdtempSync(path.join(shm, 'qlab-fs-'));
    const other = { dir: otherDir, cleanup: () => rmSync(otherDir, { recursive: true, force: true }) };
    try {
      await expect(
        new DataFiles(path.join(tmp.dir, 'data'), path.join(other.dir, 'files')).init(),
      ).rejects.toThrow('another file system');
    } finally {
      other.cleanup();
      tmp.cleanup();
    }
  });

  test('chunk indexes stay within the total, and within reach of the next chunk', async () => {
    const s = await begin({ pathMode: 'sanitize', maxOpenBytesPerKey: 10_000 });
    await chunk(s, 'a.bin', 0, 'AAAA', { 'X-Upload-Id': 'u1', 'X-Chunk-Total': '2' }).expect(200);
    await chunk(s, 'a.bin', 2, 'CCCC', { 'X-Upload-Id': 'u1' }).expect(400);
    await chunk(s, 'far.bin', 5000, 'x').expect(400);
    // Empty buffered chunks still count (4 KiB each) against the open-bytes quota.
    await chunk(s, 'e.bin', 0, 'x', { 'X-Upload-Id': 'e' }).expect(200);
    await chunk(s, 'e.bin', 10, '', { 'X-Upload-Id': 'e' }).expect(200);
    await chunk(s, 'e.bin', 11, '', { 'X-Upload-Id': 'e' }).expect(200);
    expect((await chunk(s, 'e.bin', 12, '', { 'X-Upload-Id': 'e' })).status).toBe(429);
  });

  test('a new chunk 0 with a total and no upload id starts a new file, not a 409 with an internal path', async () => {
    const s = await begin({ pathMode: 'sanitize', now: () => t });
    await chunk(s, 'r.bin', 0, 'OLD0', { 'X-Chunk-Total': '3' }).expect(200);
    await chunk(s, 'r.bin', 1, 'OLD1', { 'X-Chunk-Total': '3' }).expect(200);
    const fresh = await chunk(s, 'r.bin', 0, 'NEW0', { 'X-Chunk-Total': '2' }).expect(200);
    expect(fresh.body.actualFilename).not.toBe('r.bin');
    expect(await s.knex('uploads').where({ status: 'terminated' }).count({ n: '*' }).first()).toMatchObject({
      n: 0,
    });
  });

  test('a late repeat after idle completion is recognised, and bytes past the offset never publish', async () => {
    const s = await begin({ pathMode: 'sanitize', now: () => t, idleCompleteAfterMs: 30_000 });
    await chunk(s, 'd.bin', 0, 'AAAA').expect(200);
    await chunk(s, 'd.bin', 1, 'BBBB').expect(200);
    // As if a crash left bytes the service never acknowledged.
    writeFileSync(path.join(s.uploadDir, 'd.bin'), 'AAAABBBBJUNK');
    t += 31_000;
    await s.service.sweepIdle();
    expect(statSync(path.join(s.uploadDir, 'd.bin')).size).toBe(8);
    const repeat = await chunk(s, 'd.bin', 1, 'BBBB').expect(200);
    expect(repeat.body).toMatchObject({
      message: 'Chunk already received',
      actualFilename: 'd.bin',
      complete: true,
    });
    await chunk(s, 'd.bin', 1, 'XXXX').expect(409);
    expect(walk(s.uploadDir)).toEqual(['d.bin']);
  });

  describe('a finished tus upload whose name now holds a later upload (the first file was moved away)', () => {
    const meta = `filename ${Buffer.from('a.bin').toString('base64')}`;
    const create = (s: RunningUploads, body: Buffer, key = auth) =>
      request(s.app)
        .post('/files')
        .set({
          ...key,
          'Tus-Resumable': '1.0.0',
          'Upload-Length': String(body.length),
          'Upload-Metadata': meta,
        })
        .type('application/offset+octet-stream')
        .send(body)
        .expect(201);
    async function setUp() {
      const s = await begin({ pathMode: 'sanitize' });
      const first = (await create(s, Buffer.alloc(10, 0x41))).headers.location!.split('/').pop()!;
      rmSync(path.join(s.uploadDir, 'a.bin'));
      await create(s, Buffer.alloc(100_000, 0x42), { Authorization: `Bearer ${KEY2}` });
      return { s, first, published: path.join(s.uploadDir, 'a.bin') };
    }
    const patch = (s: RunningUploads, id: string, body: Buffer, extra: Record<string, string> = {}) =>
      request(s.app)
        .patch(`/files/${id}`)
        .set({ ...tus, 'Upload-Offset': '10', ...extra })
        .type('application/offset+octet-stream')
        .send(body);

    test('a late PATCH is refused without touching the later file', async () => {
      const { s, first, published } = await setUp();
      await patch(s, first, Buffer.from('late bytes')).expect(413);
      await patch(s, first, Buffer.alloc(0), {
        'Upload-Checksum': 'sha1 AAAAAAAAAAAAAAAAAAAAAAAAAAA=',
      }).expect(460);
      // An empty PATCH confirming the end is still answered with the final offset.
      const done = await patch(s, first, Buffer.alloc(0)).expect(204);
      expect(done.headers['upload-offset']).toBe('10');
      expect(statSync(published).size).toBe(100_000);
    });

    test('DELETE of the first upload leaves a later one written in place (IndexedCP, no total)', async () => {
      const s = await begin({ pathMode: 'sanitize' });
      const first = (await create(s, Buffer.alloc(10, 0x41))).headers.location!.split('/').pop()!;
      rmSync(path.join(s.uploadDir, 'a.bin'));
      await chunk(s, 'a.bin', 0, 'BBBB').expect(200);
      await request(s.app).delete(`/files/${first}`).set(tus).expect(204);
      expect(readFileSync(path.join(s.uploadDir, 'a.bin'), 'utf8')).toBe('BBBB');
      await chunk(s, 'a.bin', 1, 'CCCC').expect(200);
      expect(readFileSync(path.join(s.uploadDir, 'a.bin'), 'utf8')).toBe('BBBBCCCC');
    });

    test('DELETE of the first upload leaves the later file in place', async () => {
      const { s, first, published } = await setUp();
      await request(s.app).delete(`/files/${first}`).set(tus).expect(204);
      expect(statSync(published).size).toBe(100_000);
    });
  });
});
