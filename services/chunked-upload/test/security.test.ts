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
