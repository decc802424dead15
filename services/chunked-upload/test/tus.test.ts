import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { tempDir, waitFor } from '@qlab/testkit';
import request from 'supertest';
import * as tusClient from 'tus-js-client';
import { auth, KEY, KEY2, type RunningUploads, startUploads, tus, walk } from './helpers';

const meta = (pairs: Record<string, string>) =>
  Object.entries(pairs)
    .map(([k, v]) => `${k} ${Buffer.from(v).toString('base64')}`)
    .join(',');

describe('tus 1.0', () => {
  let up: RunningUploads;
  afterEach(async () => up?.close());

  async function create(length: number, filename = 'run.bin', extra: Record<string, string> = {}) {
    const res = await request(up.app)
      .post('/files')
      .set(tus)
      .set('Upload-Length', String(length))
      .set('Upload-Metadata', meta({ filename }))
      .set(extra)
      .expect(201);
    return {
      location: res.headers.location as string,
      id: (res.headers.location as string).split('/').pop()!,
      res,
    };
  }
  const patch = (id: string, offset: number, body: Buffer, extra: Record<string, string> = {}) =>
    request(up.app)
      .patch(`/files/${id}`)
      .set(tus)
      .set('Upload-Offset', String(offset))
      .set('Content-Type', 'application/offset+octet-stream')
      .set(extra)
      .send(body);

  it('advertises itself on OPTIONS (with a key; only real CORS preflights need none)', async () => {
    up = await startUploads({ maxBytes: 1000 });
    await request(up.app).options('/files').expect(401);
    const preflight = await request(up.app)
      .options('/files')
      .set({ Origin: 'https://lab.example.org', 'Access-Control-Request-Method': 'PATCH' })
      .expect(204);
    expect(preflight.headers['access-control-allow-origin']).toBe('https://lab.example.org');
    const res = await request(up.app).options('/files').set(auth).expect(204);
    expect(res.headers['tus-version']).toBe('1.0.0');
    expect(res.headers['tus-extension']!.split(',')).toEqual(
      expect.arrayContaining([
        'creation',
        'creation-with-upload',
        'termination',
        'checksum',
        'expiration',
        'concatenation',
      ]),
    );
    expect(res.headers['tus-max-size']).toBe('1000');
    expect(res.headers['tus-checksum-algorithm']).toContain('sha1');
    expect(res.headers['tus-checksum-algorithm']).toContain('sha256');
  });

  it('creates, reports offsets, appends, refuses wrong offsets and types, and publishes the file', async () => {
    up = await startUploads({ pathMode: 'sanitize' });
    const data = randomBytes(10_000);
    const { id, location, res } = await create(data.length, 'calib.h5');
    expect(location).toBe(`${res.request.url.replace(/\/files$/, '')}/files/${id}`);
    expect(res.headers['upload-expires']).toBeDefined();
    const head = await request(up.app).head(`/files/${id}`).set(tus).expect(200);
    expect(head.headers).toMatchObject({
      'upload-offset': '0',
      'upload-length': '10000',
      'cache-control': 'no-store',
      'tus-resumable': '1.0.0',
    });
    expect(head.headers['upload-metadata']).toBe(meta({ filename: 'calib.h5' }));

    const first = await patch(id, 0, data.subarray(0, 4000)).expect(204);
    expect(first.headers['upload-offset']).toBe('4000');
    await patch(id, 0, data.subarray(0, 10)).expect(409);
    await request(up.app)
      .patch(`/files/${id}`)
      .set(tus)
      .set('Upload-Offset', '4000')
      .set('Content-Type', 'text/plain')
      .send('x')
      .expect(415);
    await request(up.app)
      .patch(`/files/${id}`)
      .set(tus)
      .set('Content-Type', 'application/offset+octet-stream')
      .send('x')
      .expect(400);
    await patch(id, 4000, randomBytes(7000)).expect(413);
    expect((await request(up.app).head(`/files/${id}`).set(tus)).headers['upload-offset']).toBe('4000');
    const last = await patch(id, 4000, data.subarray(4000)).expect(204);
    expect(last.headers['upload-offset']).toBe('10000');
    expect(readFileSync(path.join(up.uploadDir, 'calib.h5')).equals(data)).toBe(true);
    expect(walk(path.join(up.dir, 'data', 'staging'))).toEqual([]);
  });

  it('speaks tus errors: 412 with Tus-Version, 413 over the max, 404 for unknown and other keys', async () => {
    up = await startUploads({ maxBytes: 5000 });
    const noVersion = await request(up.app).post('/files').set(auth).set('Upload-Length', '1').expect(412);
    expect(noVersion.headers['tus-version']).toBe('1.0.0');
    await request(up.app)
      .post('/files')
      .set(auth)
      .set('Tus-Resumable', '0.2.2')
      .set('Upload-Length', '1')
      .expect(412);
    await request(up.app).post('/files').set(tus).set('Upload-Length', '6000').expect(413);
    await request(up.app).post('/files').set(tus).expect(400);
    await request(up.app).post('/files').set(tus).set('Upload-Length', '-1').expect(400);
    await request(up.app)
      .post('/files')
      .set(tus)
      .set('Upload-Length', '5')
      .set('Upload-Metadata', 'filename !!notbase64')
      .expect(400);
    await request(up.app).head('/files/0123456789abcdef0123456789abcdef').set(tus).expect(404);
    // Dot segments are refused before routing (kit request-target.ts), never resolved.
    await request(up.app).head('/files/../../etc').set(tus).expect(400);
    const { id } = await create(10);
    await request(up.app)
      .head(`/files/${id}`)
      .set({ ...tus, Authorization: `Bearer ${KEY2}` })
      .expect(404);
    await request(up.app).head(`/files/${id}`).set({ 'Tus-Resumable': '1.0.0' }).expect(401);
  });

  it('creates with an upload in one request', async () => {
    up = await startUploads({ pathMode: 'sanitize' });
    const data = randomBytes(3000);
    const res = await request(up.app)
      .post('/files')
      .set(tus)
      .set('Upload-Length', '3000')
      .set('Upload-Metadata', meta({ filename: 'one-shot.bin' }))
      .set('Content-Type', 'application/offset+octet-stream')
      .send(data)
      .expect(201);
    expect(res.headers['upload-offset']).toBe('3000');
    expect(readFileSync(path.join(up.uploadDir, 'one-shot.bin')).equals(data)).toBe(true);
  });

  it('checks sha1 and sha256 checksums and keeps the offset on a mismatch', async () => {
    up = await startUploads();
    const data = randomBytes(2000);
    const { id } = await create(2000);
    const sha1 = createHash('sha1').update(data.subarray(0, 1000)).digest('base64');
    const bad = await patch(id, 0, data.subarray(0, 1000), {
      'Upload-Checksum': `sha1 ${createHash('sha1').update('x').digest('base64')}`,
    }).expect(460);
    expect(bad.body.code).toBe('CHECKSUM_MISMATCH');
    expect((await request(up.app).head(`/files/${id}`).set(tus)).headers['upload-offset']).toBe('0');
    await patch(id, 0, data.subarray(0, 1000), { 'Upload-Checksum': 'crc32 AAAA' }).expect(400);
    await patch(id, 0, data.subarray(0, 1000), { 'Upload-Checksum': `sha1 ${sha1}` }).expect(204);
    const sha256 = createHash('sha256').update(data.subarray(1000)).digest('base64');
    await patch(id, 1000, data.subarray(1000), { 'Upload-Checksum': `sha256 ${sha256}` }).expect(204);
  });

  it('terminates uploads, finished or not', async () => {
    up = await startUploads({ pathMode: 'sanitize' });
    const { id } = await create(100, 'gone.bin');
    await patch(id, 0, randomBytes(50)).expect(204);
    await request(up.app).delete(`/files/${id}`).set(tus).expect(204);
    await request(up.app).head(`/files/${id}`).set(tus).expect(410);
    await patch(id, 50, randomBytes(50)).expect(410);
    expect(walk(path.join(up.dir, 'data', 'staging'))).toEqual([]);
    const done = await create(10, 'done.bin');
    await patch(done.id, 0, randomBytes(10)).expect(204);
    expect(existsSync(path.join(up.uploadDir, 'done.bin'))).toBe(true);
    await request(up.app).delete(`/files/${done.id}`).set(tus).expect(204);
    expect(existsSync(path.join(up.uploadDir, 'done.bin'))).toBe(false);
  });

  it('expires unfinished uploads and removes their bytes', async () => {
    let now = 1_000_000;
    up = await startUploads({ expireAfterMs: 60_000, now: () => now });
    const { id, res } = await create(100);
    expect(new Date(res.headers['upload-expires']!).getTime()).toBe(
      Math.floor((1_000_000 + 60_000) / 1000) * 1000,
    );
    await patch(id, 0, randomBytes(10)).expect(204);
    now += 59_000;
    expect(await up.service.sweepExpired()).toBe(0);
    now += 2_000; // touched at 1_000_000, so it expires at 1_060_000
    expect(await up.service.sweepExpired()).toBe(1);
    await request(up.app).head(`/files/${id}`).set(tus).expect(410);
    expect(walk(path.join(up.dir, 'data', 'staging'))).toEqual([]);
  });

  it('concatenates partial uploads into a final one', async () => {
    up = await startUploads({ pathMode: 'sanitize' });
    const a = randomBytes(1500);
    const b = randomBytes(900);
    const pa = await create(a.length, 'ignored', { 'Upload-Concat': 'partial' });
    const pb = await create(b.length, 'ignored', { 'Upload-Concat': 'partial' });
    await patch(pb.id, 0, b).expect(204);
    const early = await request(up.app)
      .post('/files')
      .set(tus)
      .set('Upload-Concat', `final;${pa.location} ${pb.location}`)
      .expect(400);
    expect(early.body.detail).toContain('not finished');
    await patch(pa.id, 0, a).expect(204);
    expect(walk(up.uploadDir)).toEqual([]); // partials are never published
    const final = await request(up.app)
      .post('/files')
      .set(tus)
      .set('Upload-Concat', `final;/files/${pa.id} /files/${pb.id}`)
      .set('Upload-Metadata', meta({ filename: 'joined.bin' }))
      .expect(201);
    const finalId = (final.headers.location as string).split('/').pop() as string;
    const head = await request(up.app).head(`/files/${finalId}`).set(tus).expect(200);
    expect(head.headers['upload-concat']).toBe(`final;/files/${pa.id} /files/${pb.id}`);
    expect(head.headers['upload-offset']).toBe(String(a.length + b.length));
    await patch(finalId, 0, Buffer.from('x')).expect(403);
    expect(readFileSync(path.join(up.uploadDir, 'joined.bin')).equals(Buffer.concat([a, b]))).toBe(true);
    await request(up.app).head(`/files/${pa.id}`).set(tus).expect(410);
  });

  it('builds Location from the gateway forwarding headers and honours X-HTTP-Method-Override', async () => {
    up = await startUploads();
    const res = await request(up.app)
      .post('/files')
      .set(tus)
      .set('Upload-Length', '4')
      .set({
        'X-Forwarded-Proto': 'https',
        'X-Forwarded-Host': 'lab.example.org',
        'X-Forwarded-Prefix': '/api/uploads',
      })
      .expect(201);
    expect(res.headers.location).toMatch(/^https:\/\/lab\.example\.org\/api\/uploads\/files\/[0-9a-f]{32}$/);
    const id = (res.headers.location as string).split('/').pop();
    await request(up.app)
      .post(`/files/${id}`)
      .set(tus)
      .set('X-HTTP-Method-Override', 'PATCH')
      .set('Upload-Offset', '0')
      .set('Content-Type', 'application/offset+octet-stream')
      .send(Buffer.from('abcd'))
      .expect(204);
  });

  it('lets a newer PATCH take over from a stalled one, never interleaving', async () => {
    up = await startUploads({ pathMode: 'sanitize' });
    const data = randomBytes(200_000);
    const { id } = await create(data.length, 'takeover.bin');
    const url = new URL(`${up.url}/files/${id}`);
    // Counts the bytes the service has taken from a body (the test's own view of writeAt), so
    // the test knows when the stalled PATCH's 50 kB are in, instead of sleeping and hoping.
    let taken = 0;
    const writeAt = up.files.writeAt.bind(up.files);
    jest.spyOn(up.files, 'writeAt').mockImplementation((dataPath, offset, body, limit, hashes) =>
      writeAt(
        dataPath,
        offset,
        (async function* () {
          for await (const piece of body) {
            taken += piece.length;
            yield piece;
          }
        })(),
        limit,
        hashes,
      ),
    );
    // A PATCH that sends 50 kB and then stalls, like a client whose network dropped.
    const { request: httpRequest } = await import('node:http');
    const stalled = httpRequest({
      host: url.hostname,
      port: url.port,
      path: url.pathname,
      method: 'PATCH',
      headers: {
        ...tus,
        'Upload-Offset': '0',
        'Content-Type': 'application/offset+octet-stream',
        'Content-Length': String(data.length),
      },
    });
    stalled.on('error', () => undefined);
    stalled.write(data.subarray(0, 50_000));
    await waitFor(() => taken === 50_000);
    // The client resumes: HEAD (the stalled PATCH has committed nothing yet), then a PATCH at that
    // offset, which takes over: the stalled request is cut, commits the 50 kB it had, and the
    // newer one, now at a stale offset, is refused without writing.
    const head = await request(up.app).head(`/files/${id}`).set(tus).expect(200);
    expect(head.headers['upload-offset']).toBe('0');
    await patch(id, 0, data).expect(409);
    const committed = await request(up.app).head(`/files/${id}`).set(tus).expect(200);
    expect(committed.headers['upload-offset']).toBe('50000');
    await patch(id, 50_000, data.subarray(50_000)).expect(204);
    expect(readFileSync(path.join(up.uploadDir, 'takeover.bin')).equals(data)).toBe(true);
    stalled.destroy();
  });

  it('works with tus-js-client, including resuming an interrupted upload', async () => {
    up = await startUploads({ pathMode: 'sanitize' });
    const tmp = tempDir();
    const file = path.join(tmp.dir, 'scan.bin');
    const data = randomBytes(3 * 1024 * 1024 + 123);
    writeFileSync(file, data);
    // FileUrlStorage exists in the Node build but not in the package's type declarations.
    const { FileUrlStorage } = tusClient as unknown as {
      FileUrlStorage: new (file: string) => tusClient.UrlStorage;
    };
    const urlStorage = new FileUrlStorage(path.join(tmp.dir, 'tus-urls.json'));
    const options = (onProgress?: (sent: number) => void) => ({
      endpoint: `${up.url}/files`,
      headers: { Authorization: `Bearer ${KEY}` },
      chunkSize: 512 * 1024,
      metadata: { filename: 'scan.bin' },
      retryDelays: [],
      urlStorage,
      fingerprint: async () => 'scan.bin-fingerprint',
      onProgress,
    });
    // First attempt: abort after about 1 MiB.
    await new Promise<void>((resolve, reject) => {
      const first = new tusClient.Upload(readFileSync(file), {
        ...options((sent) => {
          if (sent >= 1024 * 1024) first.abort().then(resolve, reject);
        }),
        onError: reject,
        onSuccess: () => reject(new Error('should have been aborted')),
      });
      first.start();
    });
    const partial = (await request(up.app).get('/uploads?protocol=tus').set(auth)).body.items[0];
    expect(partial.offset).toBeGreaterThanOrEqual(512 * 1024);
    expect(partial.offset).toBeLessThan(data.length);

    // Second attempt finds the previous upload and resumes at the server's offset.
    await new Promise<void>((resolve, reject) => {
      const second = new tusClient.Upload(readFileSync(file), {
        ...options(),
        onError: reject,
        onSuccess: () => resolve(),
      });
      second.findPreviousUploads().then((previous) => {
        expect(previous).toHaveLength(1);
        second.resumeFromPreviousUpload(previous[0]!);
        second.start();
      }, reject);
    });
    const items = (await request(up.app).get('/uploads?protocol=tus').set(auth)).body.items;
    expect(items).toHaveLength(1);
    expect(readFileSync(path.join(up.uploadDir, 'scan.bin')).equals(data)).toBe(true);
    tmp.cleanup();
  });
  // Found by pnpm chaos: SIGKILL after the last offset was stored but before the file was
  // published left an upload whose HEAD said "all bytes here", so tus-js-client reported
  // success for a file that never appeared.
  it('publishes an upload whose bytes were all stored when the process died before completing it', async () => {
    up = await startUploads({ pathMode: 'sanitize' });
    const { id } = await create(5, 'cut-short.bin');
    const upload = (await up.service.store.get(id))!;
    // The state a crash leaves: bytes on disk and the offset recorded, the upload still active.
    writeFileSync(up.files.abs(upload.dataPath), 'hello');
    await up.service.store.update(id, { offset: 5 });
    const head = await request(up.app).head(`/files/${id}`).set(tus).expect(200);
    expect(head.headers['upload-offset']).toBe('5');
    expect(readFileSync(path.join(up.uploadDir, 'cut-short.bin'), 'utf8')).toBe('hello');
    expect((await up.service.store.get(id))!.status).toBe('complete');
    // Once: a second HEAD changes nothing.
    await request(up.app).head(`/files/${id}`).set(tus).expect(200);
    expect(walk(up.uploadDir)).toEqual(['cut-short.bin']);
  });
  it('finishes an upload whose completion failed after its file was published (a store outage)', async () => {
    up = await startUploads({ pathMode: 'sanitize' });
    const { id } = await create(5, 'whole.bin');
    // The database goes away inside complete(): after the file was linked, before its row commits.
    const store = up.service.store;
    const update = store.update.bind(store);
    let outage = true;
    store.update = (uid, patch, trx) => {
      if (outage && patch.status === 'complete') {
        outage = false;
        return Promise.reject(new Error('Connection terminated unexpectedly'));
      }
      return update(uid, patch, trx);
    };
    await request(up.app)
      .patch(`/files/${id}`)
      .set(tus)
      .set('Upload-Offset', '0')
      .set('Content-Type', 'application/offset+octet-stream')
      .send(Buffer.from('hello'))
      .expect(503);
    // The client's retry (tus-js-client sends HEAD) completes it: one file, its bytes, complete.
    const head = await request(up.app).head(`/files/${id}`).set(tus).expect(200);
    expect(head.headers['upload-offset']).toBe('5');
    expect((await store.get(id))!.status).toBe('complete');
    expect(walk(up.uploadDir)).toEqual(['whole.bin']);
    expect(readFileSync(path.join(up.uploadDir, 'whole.bin'), 'utf8')).toBe('hello');
  });
});
