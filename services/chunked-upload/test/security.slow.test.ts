import request from 'supertest';
import { auth, GATEWAY_TOKEN, KEY2, type RunningUploads, startUploads, tus, walk } from './helpers';

const meta = (name: string) => `filename ${Buffer.from(name).toString('base64')}`;
const asCaller = (keyId: string) => ({
  Authorization: `Bearer ${GATEWAY_TOKEN}`,
  'X-Qlab-Key-Id': keyId,
  'Tus-Resumable': '1.0.0',
});
const ALICE = 'a1a1a1a1a1a1a1a1';
const BOB = 'b2b2b2b2b2b2b2b2';

describe('chunked-upload: who may do what', () => {
  let up: RunningUploads;
  afterEach(async () => up?.close());

  const count = async () => Number((await up.knex('uploads').count({ n: '*' }).first())?.n ?? 0);

  it('refuses OPTIONS with X-HTTP-Method-Override and a body without a key (no upload, no file)', async () => {
    up = await startUploads();
    const res = await request(up.app)
      .options('/files')
      .set({
        'X-HTTP-Method-Override': 'POST',
        'Tus-Resumable': '1.0.0',
        'Upload-Length': '12',
        'Upload-Metadata': meta('noauth.txt'),
        'Content-Type': 'application/offset+octet-stream',
      })
      .send(Buffer.from('UNAUTH-WRITE'));
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect(res.headers['content-type']).toMatch(/problem\+json/);
    expect(await count()).toBe(0);
    expect(walk(up.uploadDir)).toEqual([]);
    // A preflight-looking OPTIONS with a body is not a preflight either.
    await request(up.app)
      .options('/files')
      .set({ Origin: 'https://x.example', 'Access-Control-Request-Method': 'POST' })
      .send('body')
      .expect(401);
  });

  it('honours X-HTTP-Method-Override only on POST, and only to PATCH or DELETE', async () => {
    up = await startUploads();
    const created = await request(up.app).post('/files').set(tus).set('Upload-Length', '4').expect(201);
    const id = created.headers.location!.split('/').pop()!;
    for (const [method, override] of [
      ['get', 'DELETE'],
      ['get', 'PATCH'],
      ['options', 'POST'],
      ['head', 'DELETE'],
      ['post', 'GET'],
      ['post', 'PUT'],
    ] as const) {
      const res = await request(up.app)
        [method](`/files/${id}`)
        .set(tus)
        .set('X-HTTP-Method-Override', override);
      expect([method, override, res.status]).toEqual([method, override, 400]);
    }
    await request(up.app).head(`/files/${id}`).set(tus).expect(200);
    await request(up.app).post(`/files/${id}`).set(tus).set('X-HTTP-Method-Override', 'DELETE').expect(204);
    await request(up.app).head(`/files/${id}`).set(tus).expect(410);
  });

  it('keeps each gateway caller to its own uploads (X-Qlab-Key-Id with the gateway token)', async () => {
    up = await startUploads();
    const created = await request(up.app)
      .post('/files')
      .set(asCaller(ALICE))
      .set('Upload-Length', '4')
      .set('Upload-Metadata', meta('alice.bin'))
      .expect(201);
    const id = created.headers.location!.split('/').pop()!;
    await request(up.app).head(`/files/${id}`).set(asCaller(ALICE)).expect(200);
    // Bob, the gateway itself, and a direct client key do not see Alice's upload.
    await request(up.app).head(`/files/${id}`).set(asCaller(BOB)).expect(404);
    await request(up.app)
      .head(`/files/${id}`)
      .set({ Authorization: `Bearer ${GATEWAY_TOKEN}`, 'Tus-Resumable': '1.0.0' })
      .expect(404);
    await request(up.app).head(`/files/${id}`).set(tus).expect(404);
    await request(up.app)
      .patch(`/files/${id}`)
      .set(asCaller(BOB))
      .set({ 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' })
      .send(Buffer.from('evil'))
      .expect(404);
    await request(up.app).delete(`/files/${id}`).set(asCaller(BOB)).expect(404);
    // Bob cannot concatenate Alice's partial uploads.
    const part = await request(up.app)
      .post('/files')
      .set(asCaller(ALICE))
      .set({ 'Upload-Length': '0', 'Upload-Concat': 'partial' })
      .expect(201);
    await request(up.app)
      .post('/files')
      .set(asCaller(BOB))
      .set('Upload-Concat', `final;${part.headers.location}`)
      .expect(400);
    // A client key cannot claim to be someone through the header.
    await request(up.app).head(`/files/${id}`).set(tus).set('X-Qlab-Key-Id', ALICE).expect(404);
    // A malformed caller id is refused, not used.
    await request(up.app)
      .head(`/files/${id}`)
      .set({ ...asCaller(ALICE), 'X-Qlab-Key-Id': '../../x' })
      .expect(400);
  });

  it('lists and clears only the caller’s own sessions', async () => {
    up = await startUploads();
    await request(up.app).post('/files').set(asCaller(ALICE)).set('Upload-Length', '10').expect(201);
    await request(up.app).post('/files').set(asCaller(BOB)).set('Upload-Length', '10').expect(201);
    await request(up.app).post('/files').set(tus).set('Upload-Length', '10').expect(201);
    const bobs = await request(up.app).get('/sessions').set(asCaller(BOB)).expect(200);
    expect(bobs.body.total).toBe(1);
    const cleared = await request(up.app).delete('/sessions').set(asCaller(BOB)).expect(200);
    expect(cleared.body.cleared).toBe(1);
    expect((await request(up.app).get('/sessions').set(asCaller(ALICE)).expect(200)).body.total).toBe(1);
    expect((await request(up.app).get('/sessions').set(auth).expect(200)).body.total).toBe(1);
    await request(up.app)
      .get('/sessions')
      .set({ Authorization: `Bearer ${KEY2}` })
      .expect(200);
  });

  it('routes case-sensitively and refuses dot segments and encoded slashes', async () => {
    up = await startUploads();
    await request(up.app).post('/FILES').set(tus).set('Upload-Length', '4').expect(404);
    for (const p of ['/files/./x', '/files/%2e%2e/x', '/x/..%2Ffiles', '//files', '/fil%65s'])
      await request(up.app).post(p).set(tus).set('Upload-Length', '4').expect(400);
    expect(await count()).toBe(0);
  });
});

describe('chunked-upload: limits that hold however the bytes arrive', () => {
  let up: RunningUploads;
  afterEach(async () => up?.close());
  const MiB = 1024 * 1024;
  const active = async () =>
    Number((await up.knex('uploads').where({ status: 'active' }).count({ n: '*' }).first())?.n ?? 0);
  const staged = async () => (await up.files.stagingEntries()).length;
  const chunk = (index: number, body: Buffer, extra: Record<string, string> = {}) =>
    request(up.app)
      .post('/upload')
      .set(auth)
      .set({ 'X-Chunk-Index': String(index), 'X-File-Name': 'big.bin', 'X-Upload-Id': 'u1', ...extra })
      .set('Content-Type', 'application/octet-stream')
      .send(body);

  it('counts early chunks against UPLOAD_MAX_BYTES (1,2,3,0 of 4 MiB under 10 MiB)', async () => {
    up = await startUploads({ maxBytes: 10 * MiB });
    const four = Buffer.alloc(4 * MiB, 7);
    const statuses: number[] = [];
    for (const i of [1, 2, 3, 0]) statuses.push((await chunk(i, four, { 'X-Chunk-Total': '4' })).status);
    expect(statuses).toContain(413);
    // Nothing past the limit was ever published.
    const published = walk(up.uploadDir);
    for (const f of published)
      expect(require('node:fs').statSync(`${up.uploadDir}/${f}`).size).toBeLessThanOrEqual(10 * MiB);
  });

  it('refuses a final concatenation that lists one partial twice', async () => {
    up = await startUploads();
    const part = await request(up.app)
      .post('/files')
      .set(tus)
      .set({
        'Upload-Length': '4',
        'Upload-Concat': 'partial',
        'Content-Type': 'application/offset+octet-stream',
      })
      .send(Buffer.from('abcd'))
      .expect(201);
    const url = part.headers.location!;
    await request(up.app)
      .post('/files')
      .set(tus)
      .set('Upload-Concat', `final;${Array(9).fill(url).join(' ')}`)
      .expect(400);
    expect(await active()).toBe(1);
  });

  it('leaves no session and no file behind a refused creation', async () => {
    up = await startUploads({ pathMode: 'allow-paths' });
    // 413: the body is longer than Upload-Length; 415: a body of the wrong type.
    await request(up.app)
      .post('/files')
      .set(tus)
      .set({
        'Upload-Length': '3',
        'Upload-Metadata': meta('a/x.bin'),
        'Content-Type': 'application/offset+octet-stream',
      })
      .send(Buffer.from('too long'))
      .expect(413);
    await request(up.app)
      .post('/files')
      .set(tus)
      .set({ 'Upload-Length': '3', 'Upload-Metadata': meta('a/x.bin'), 'Content-Type': 'text/plain' })
      .send('abc')
      .expect(415);
    // 400: a folder that is a symbolic link out of the upload dir.
    const { symlinkSync, mkdtempSync } = require('node:fs');
    const outside = mkdtempSync(`${require('node:os').tmpdir()}/qlab-outside-`);
    symlinkSync(outside, `${up.uploadDir}/escape`);
    await request(up.app)
      .post('/files')
      .set(tus)
      .set({ 'Upload-Length': '3', 'Upload-Metadata': meta('escape/x.bin') })
      .expect(400);
    await chunk(0, Buffer.from('abc'), { 'X-File-Name': 'escape/y.bin', 'X-Upload-Id': 'u2' }).expect(400);
    await chunk(0, Buffer.alloc(100), {
      'X-File-Name': 'c/z.bin',
      'X-Upload-Id': 'u3',
      'X-Chunk-SHA256': '0'.repeat(64),
    }).expect(400);
    expect(await active()).toBe(0);
    expect(await staged()).toBe(0);
    expect(require('node:fs').readdirSync(outside)).toEqual([]);
    // The names are free again at once.
    await request(up.app)
      .post('/files')
      .set(tus)
      .set({
        'Upload-Length': '3',
        'Upload-Metadata': meta('a/x.bin'),
        'Content-Type': 'application/offset+octet-stream',
      })
      .send(Buffer.from('abc'))
      .expect(201);
    expect(walk(up.uploadDir).filter((f) => !f.startsWith('escape'))).toEqual(['a/x.bin']);
  });

  it('caps open sessions and declared bytes per key (429), and only for that key', async () => {
    up = await startUploads({ maxSessionsPerKey: 2, maxOpenBytesPerKey: 1000 });
    const create = (length: number, who = tus) =>
      request(up.app).post('/files').set(who).set('Upload-Length', String(length));
    await create(100).expect(201);
    await create(100).expect(201);
    const over = await create(100).expect(429);
    expect(over.body.code).toBe('QUOTA_EXCEEDED');
    await create(100, asCaller(ALICE)).expect(201);
    await create(1001, asCaller(BOB)).expect(429);
    await create(900, asCaller(BOB)).expect(201);
    await create(101, asCaller(BOB)).expect(429);
    await create(100, asCaller(BOB)).expect(201);
  });

  it('never writes an in-place file through a symbolic link swapped in', async () => {
    up = await startUploads({ pathMode: 'sanitize' });
    const seed = (index: number, body: string) =>
      request(up.app)
        .post('/upload')
        .set(auth)
        .set({ 'X-Chunk-Index': String(index), 'X-File-Name': 'grow.txt' })
        .send(Buffer.from(body));
    await seed(0, 'first-').expect(200);
    const { writeFileSync, rmSync, symlinkSync, readFileSync } = require('node:fs');
    const victim = `${up.dir}/victim.txt`;
    writeFileSync(victim, 'precious');
    rmSync(`${up.uploadDir}/grow.txt`);
    symlinkSync(victim, `${up.uploadDir}/grow.txt`);
    const res = await seed(1, 'evil');
    expect(res.status).toBe(400);
    expect(readFileSync(victim, 'utf8')).toBe('precious');
  });
});

describe('chunked-upload: races and quotas an outside review found', () => {
  let up: RunningUploads;
  afterEach(async () => up?.close());
  const partial = async (bytes: number) => {
    const res = await request(up.app)
      .post('/files')
      .set(tus)
      .set({
        'Upload-Length': String(bytes),
        'Upload-Concat': 'partial',
        'Content-Type': 'application/offset+octet-stream',
      })
      .send(Buffer.alloc(bytes, 1))
      .expect(201);
    return res.headers.location as string;
  };
  const completed = async () =>
    Number((await up.knex('uploads').where({ status: 'complete' }).count({ n: '*' }).first())?.n ?? 0);

  it('a partial deleted while a final concatenation copies it is a 4xx, not a crash', async () => {
    up = await startUploads();
    const a = await partial(4 * 1024 * 1024);
    const b = await partial(4 * 1024 * 1024);
    const final = request(up.app).post('/files').set(tus).set('Upload-Concat', `final;${a} ${b}`);
    const del = request(up.app)
      .delete(`/files/${b.split('/').pop()}`)
      .set(tus);
    const [f, d] = await Promise.all([final, del]);
    // Either the final got both (and the DELETE found b used up) or the DELETE won (and the final is refused).
    expect([f.status, d.status].sort()).toEqual(f.status === 201 ? [201, 410] : [204, 409]);
    expect((await request(up.app).get('/health')).status).toBe(200);
  });

  it('two finals over the same partials: one wins, the other is refused, one file', async () => {
    up = await startUploads();
    const a = await partial(2 * 1024 * 1024);
    const b = await partial(2 * 1024 * 1024);
    const finals = await Promise.all(
      [1, 2, 3, 4].map(() => request(up.app).post('/files').set(tus).set('Upload-Concat', `final;${a} ${b}`)),
    );
    expect(finals.map((r) => r.status).sort()).toEqual([201, 409, 409, 409]);
    expect(await completed()).toBe(1);
    expect(walk(up.uploadDir)).toHaveLength(1);
  });

  it('DELETE /sessions does not end an IndexedCP upload while a chunk of it is being written', async () => {
    up = await startUploads();
    // Chunk 1 waits in a buffer; chunk 0 then streams slowly while the sessions are cleared.
    await request(up.app)
      .post('/upload')
      .set(auth)
      .set({ 'X-Chunk-Index': '1', 'X-Chunk-Total': '2', 'X-File-Name': 'race.bin', 'X-Upload-Id': 'race' })
      .send(Buffer.alloc(1000, 2))
      .expect(200);
    const { request: httpRequest } = await import('node:http');
    const slow = new Promise<number>((resolve, reject) => {
      const r = httpRequest(
        `${up.url}/upload`,
        {
          method: 'POST',
          headers: {
            ...auth,
            'X-Chunk-Index': '0',
            'X-Chunk-Total': '2',
            'X-File-Name': 'race.bin',
            'X-Upload-Id': 'race',
            'Content-Length': '2000',
          },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      r.on('error', reject);
      r.write(Buffer.alloc(1000, 1));
      setTimeout(() => r.end(Buffer.alloc(1000, 1)), 300);
    });
    await new Promise((r) => setTimeout(r, 100));
    const cleared = await request(up.app).delete('/sessions').set(auth).expect(200);
    expect(cleared.body.cleared).toBe(0);
    expect(await slow).toBe(200);
    expect(await completed()).toBe(1);
    expect((await request(up.app).get('/health')).status).toBe(200);
  });

  it('the open-bytes quota holds for IndexedCP chunks too, and a refused restart leaves no staged file', async () => {
    up = await startUploads({ maxOpenBytesPerKey: 1000, maxBytes: 100_000 });
    const chunk = (index: number, bytes: number, name = 'q.bin') =>
      request(up.app)
        .post('/upload')
        .set(auth)
        .set({ 'X-Chunk-Index': String(index), 'X-File-Name': name })
        .send(Buffer.alloc(bytes, 3));
    await chunk(0, 900).expect(200);
    const over = await chunk(1, 50_000);
    expect(over.status).toBe(429);
    expect(over.body.code).toBe('QUOTA_EXCEEDED');
    // A chunk 0 that would start a new file of the same name is refused by the quota: nothing staged stays.
    for (const n of [1, 2, 3]) expect((await chunk(0, 40_000 + n)).status).toBeGreaterThanOrEqual(400);
    expect((await up.files.stagingEntries()).filter((e) => e.endsWith('.bin'))).toEqual([]);
  });

  it('unfinished uploads of other keys are not listed; finished ones are the lab’s', async () => {
    up = await startUploads();
    const open = await request(up.app)
      .post('/files')
      .set(asCaller(ALICE))
      .set({ 'Upload-Length': '10', 'Upload-Metadata': meta('alice-secret.bin') })
      .expect(201);
    const openId = open.headers.location!.split('/').pop()!;
    await request(up.app)
      .post('/files')
      .set(asCaller(ALICE))
      .set({
        'Upload-Length': '3',
        'Upload-Metadata': meta('alice-done.bin'),
        'Content-Type': 'application/offset+octet-stream',
      })
      .send(Buffer.from('abc'))
      .expect(201);
    const bobs = await request(up.app).get('/uploads').set(asCaller(BOB)).expect(200);
    expect(bobs.body.items.map((u: { clientFilename: string }) => u.clientFilename)).toEqual([
      'alice-done.bin',
    ]);
    // Each item names its owner by key id (the console's "key" column), never by a key.
    expect(bobs.body.items[0].key_id).toBe(`gw:${ALICE}`);
    await request(up.app).get(`/uploads/${openId}`).set(asCaller(BOB)).expect(404);
    await request(up.app).get(`/uploads/${openId}`).set(asCaller(ALICE)).expect(200);
  });

  it('an empty PATCH at the end of a finished upload announces nothing again', async () => {
    up = await startUploads();
    const res = await request(up.app)
      .post('/files')
      .set(tus)
      .set({ 'Upload-Length': '3', 'Content-Type': 'application/offset+octet-stream' })
      .send(Buffer.from('abc'))
      .expect(201);
    const id = res.headers.location!.split('/').pop()!;
    const completions = async () =>
      Number((await up.knex('uploads').where({ id }).first())?.completed_at ?? 0);
    const first = await completions();
    for (let i = 0; i < 3; i++)
      await request(up.app)
        .patch(`/files/${id}`)
        .set(tus)
        .set({ 'Upload-Offset': '3', 'Content-Type': 'application/offset+octet-stream' })
        .send(Buffer.alloc(0))
        .expect(204);
    expect(await completions()).toBe(first);
    expect(walk(up.uploadDir)).toHaveLength(1);
  });
});
