import { readFileSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from '@qlab/testkit';
import request from 'supertest';
import { ArchiveBlobs } from '../src/storage/archive-blobs';
import { binary, type Engine, makeZip, type RunningStore, startStore } from './helpers';

/** The seed's API and qlab's additions; run on SQLite and on PostgreSQL. */
export function archiveApiContract(engine: Engine) {
  describe(`calibration store API on ${engine.label ?? engine.name}`, () => {
    let store: RunningStore;
    const files = tempDir('qlab-zips-');
    let zipA: string;
    let zipB: string;
    const auth = { Authorization: 'Bearer secret-token' };

    beforeAll(async () => {
      zipA = await makeZip(path.join(files.dir, 'bundle.zip'), {
        'a.txt': 'hello',
        'b/c.json': '{"t1": 12.5}',
      });
      zipB = await makeZip(path.join(files.dir, 'other.zip'), {
        'platform/parameters.json': '{"nshots": 1024}',
      });
    });
    beforeEach(async () => {
      store = await startStore({ engine, apiToken: 'secret-token' });
    });
    afterEach(async () => store.close());
    afterAll(() => files.cleanup());

    const upload = (hashID: string, notes: string, file: string, route = '/calibrations/upload') =>
      request(store.app)
        .post(route)
        .set(auth)
        .field('hashID', hashID)
        .field('notes', notes)
        .attach('archive', file);

    it('takes a retried upload with the same Idempotency-Key once', async () => {
      const withKey = (key: string, file = zipA, hashID = 'idem', route = '/calibrations/upload') =>
        upload(hashID, 'n', file, route).set('Idempotency-Key', key);
      const first = await withKey('retry-1').expect(200);
      const again = await withKey('retry-1').expect(200);
      expect(again.headers['idempotent-replayed']).toBe('true');
      // (download_url names supertest's port, new for each request.)
      expect({ ...again.body, download_url: 0 }).toEqual({ ...first.body, download_url: 0 });
      // Two at once with a new key: one archive between them.
      const [a, b] = await Promise.all([withKey('"retry-2"'), withKey('"retry-2"')]);
      expect([a.status, b.status]).toEqual([200, 200]);
      expect(a.body.id).toBe(b.body.id);
      const list = await request(store.app).get('/calibrations/list?hashID=idem').set(auth).expect(200);
      expect(list.body.items).toHaveLength(2);
      // The same key for another upload is refused, not answered with the first one.
      expect((await withKey('retry-1', zipA, 'another-hash')).status).toBe(422);
      // The same upload zipped anew (other bytes) is still that upload: the first archive is kept.
      const rezipped = await withKey('retry-1', zipB).expect(200);
      expect(rezipped.body.sha256).toBe(first.body.sha256);
      expect((await withKey('retry-1', zipA, 'idem', '/results/upload').field('name', 'r')).status).toBe(422);
      // Bad keys, and no key: ordinary uploads.
      expect((await withKey('')).status).toBe(400);
      expect((await withKey('x'.repeat(256))).status).toBe(400);
      expect((await withKey('tab\there')).status).toBe(400);
      await upload('idem', 'n', zipA).expect(200);
      await upload('idem', 'n', zipA).expect(200);
      expect(
        (await request(store.app).get('/calibrations/list?hashID=idem').set(auth)).body.items,
      ).toHaveLength(4);
    });

    it('answers the seed curl flow: upload, latest, download, list', async () => {
      const up = await upload('abc123', 'first batch', zipA).expect(200);
      expect(up.body).toMatchObject({ status: 'ok', id: 1 });
      expect(up.body.created_at).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);

      const latest = await request(store.app).get('/calibrations/latest').set(auth).expect(200);
      expect(latest.body).toMatchObject({
        hashID: 'abc123',
        notes: 'first batch',
        created_at: up.body.created_at,
      });

      const dl = await request(store.app)
        .post('/calibrations/download')
        .set(auth)
        .send({ hashID: 'abc123' })
        .expect(200)
        .expect('content-type', /json/);
      expect(dl.body.notes).toBe('first batch');
      expect(dl.body.filename).toBe('bundle.zip');
      expect(Buffer.from(dl.body.data_b64, 'base64').equals(readFileSync(zipA))).toBe(true);

      const list = await request(store.app).get('/calibrations/list').set(auth).expect(200);
      expect(list.body.items).toHaveLength(1);
      expect(list.body.items[0]).toMatchObject({
        id: 1,
        hashID: 'abc123',
        notes: 'first batch',
        filename: 'bundle.zip',
        size: readFileSync(zipA).length,
      });
    });

    it('accepts the /upload alias and form-encoded download bodies', async () => {
      await upload('h1', 'via alias', zipA, '/upload').expect(200);
      const dl = await request(store.app)
        .post('/calibrations/download')
        .set(auth)
        .type('form')
        .send({ hashID: 'h1' });
      expect(dl.status).toBe(200);
      expect(dl.body.notes).toBe('via alias');
    });

    it('lists newest first and returns the newest archive for a hashID', async () => {
      await upload('h', 'old', zipA).expect(200);
      await upload('other', 'x', zipB).expect(200);
      await upload('h', 'new', zipB).expect(200);
      const list = await request(store.app).get('/calibrations/list').set(auth).expect(200);
      expect(list.body.items.map((i: { notes: string }) => i.notes)).toEqual(['new', 'x', 'old']);
      const dl = await request(store.app)
        .post('/calibrations/download')
        .set(auth)
        .send({ hashID: 'h' })
        .expect(200);
      expect(dl.body.notes).toBe('new');
      expect(Buffer.from(dl.body.data_b64, 'base64').equals(readFileSync(zipB))).toBe(true);
      const latest = await request(store.app).get('/calibrations/latest').set(auth).expect(200);
      expect(latest.body.notes).toBe('new');
    });

    it('stores results by hashID and name and downloads the latest match', async () => {
      const r1 = await request(store.app)
        .post('/results/upload')
        .set(auth)
        .field('hashID', 'abc123')
        .field('name', 'daily-check')
        .field('notes', 'passed')
        .attach('archive', zipA)
        .expect(200);
      expect(r1.body).toMatchObject({ status: 'ok', id: 1 });
      await request(store.app)
        .post('/results/upload')
        .set(auth)
        .field('hashID', 'abc123')
        .field('name', 'other')
        .field('notes', 'not me')
        .attach('archive', zipB)
        .expect(200);
      const dl = await request(store.app)
        .post('/results/download')
        .set(auth)
        .send({ hashID: 'abc123', name: 'daily-check' })
        .expect(200);
      expect(dl.body).toMatchObject({ notes: 'passed', filename: 'bundle.zip' });
      expect(Buffer.from(dl.body.data_b64, 'base64').equals(readFileSync(zipA))).toBe(true);
      await request(store.app)
        .post('/results/download')
        .set(auth)
        .send({ hashID: 'abc123', name: 'nope' })
        .expect(404);
      await request(store.app).post('/results/download').set(auth).send({ hashID: 'abc123' }).expect(400);
      const list = await request(store.app).get('/results/list?name=daily-check').set(auth).expect(200);
      expect(list.body.items).toHaveLength(1);
      expect(list.body.items[0]).toMatchObject({ name: 'daily-check', hashID: 'abc123' });
    });

    it('404s latest and download when nothing matches', async () => {
      const latest = await request(store.app).get('/calibrations/latest').set(auth).expect(404);
      expect(latest.headers['content-type']).toMatch(/problem\+json/);
      await request(store.app)
        .post('/calibrations/download')
        .set(auth)
        .send({ hashID: 'missing' })
        .expect(404);
      await request(store.app).get('/calibrations/42').set(auth).expect(404);
      await request(store.app).get('/calibrations/42/archive').set(auth).expect(404);
      await request(store.app).get('/calibrations/abc/archive').set(auth).expect(400);
    });

    it('stores identical archives once', async () => {
      await upload('a', '1', zipA).expect(200);
      await upload('b', '2', zipA).expect(200);
      await request(store.app)
        .post('/results/upload')
        .set(auth)
        .field('hashID', 'c')
        .field('name', 'n')
        .attach('archive', zipA)
        .expect(200);
      const list = await request(store.app).get('/calibrations/list').set(auth).expect(200);
      const [x, y] = list.body.items;
      expect(x.sha256).toBe(y.sha256);
      expect(x.id).not.toBe(y.id);
      const stored: string[] = [];
      for await (const b of store.blobs.store.list('archives/')) stored.push(b.key);
      expect(stored).toEqual([ArchiveBlobs.keyOf(x.sha256)]);
    });

    it('streams archives by id and by hashID with ETag, conditional GET and Range', async () => {
      const bytes = readFileSync(zipA);
      const up = await upload('abc', 'n', zipA).expect(200);
      const full = await request(store.app)
        .get(`/calibrations/${up.body.id}/archive`)
        .set(auth)
        .buffer(true)
        .parse(binary)
        .expect(200);
      expect(full.headers['content-type']).toBe('application/zip');
      expect(full.headers.etag).toBe(`"${up.body.sha256}"`);
      expect(full.headers['content-disposition']).toContain('bundle.zip');
      expect((full.body as Buffer).equals(bytes)).toBe(true);

      await request(store.app)
        .get(`/calibrations/${up.body.id}/archive`)
        .set(auth)
        .set('If-None-Match', `"${up.body.sha256}"`)
        .expect(304);
      const part = await request(store.app)
        .get('/calibrations/archive?hashID=abc')
        .set(auth)
        .set('Range', 'bytes=4-13')
        .buffer(true)
        .parse(binary)
        .expect(206);
      expect(part.headers['content-range']).toBe(`bytes 4-13/${bytes.length}`);
      expect(Buffer.from(part.body).equals(bytes.subarray(4, 14))).toBe(true);
      await request(store.app)
        .get(`/calibrations/${up.body.id}/archive`)
        .set(auth)
        .set('Range', `bytes=${bytes.length + 10}-`)
        .expect(416);
      await request(store.app).get('/calibrations/archive?hashID=zzz').set(auth).expect(404);
      await request(store.app).get('/calibrations/archive').set(auth).expect(400);
      const meta = await request(store.app).get(`/calibrations/${up.body.id}`).set(auth).expect(200);
      expect(meta.body).toMatchObject({ hashID: 'abc', sha256: up.body.sha256 });
    });

    it('answers odd Range and If-Range headers as RFC 9110 says', async () => {
      const bytes = readFileSync(zipA);
      const up = await upload('rng', 'n', zipA).expect(200);
      const get = (headers: Record<string, string>) => {
        const r = request(store.app).get(`/calibrations/${up.body.id}/archive`).set(auth);
        for (const [k, v] of Object.entries(headers)) r.set(k, v);
        return r.buffer(true).parse(binary);
      };
      // Ignored (the whole archive): malformed, another unit, several ranges, a stale If-Range.
      for (const headers of <Record<string, string>[]>[
        { Range: 'bytes=abc' },
        { Range: 'items=0-3' },
        { Range: 'bytes=0-1,5-6' },
        { Range: 'bytes=0-3', 'If-Range': '"0000"' },
        { Range: 'bytes=0-3', 'If-Range': 'Mon, 01 Jan 1990 00:00:00 GMT' },
      ]) {
        const res = await get(headers);
        expect([headers, res.status]).toEqual([headers, 200]);
        expect((res.body as Buffer).equals(bytes)).toBe(true);
      }
      // Honoured: a matching If-Range entity tag, a suffix, an end past the size.
      const etag = `"${up.body.sha256}"`;
      const ranged = await get({ Range: 'bytes=0-3', 'If-Range': etag }).expect(206);
      expect((ranged.body as Buffer).equals(bytes.subarray(0, 4))).toBe(true);
      const lastModified = ranged.headers['last-modified'] as string;
      // A date is not a strong validator here (two archives can share its second): the whole,
      // never another archive's tail after this one's head. A future date neither.
      for (const date of [lastModified, 'Fri, 01 Jan 2100 00:00:00 GMT'])
        expect((await get({ Range: 'bytes=4-', 'If-Range': date }).expect(200)).body).toEqual(bytes);
      // A suffix longer than the archive is the whole archive (zip readers ask for bytes=-65557).
      const longSuffix = await get({ Range: 'bytes=-99999' }).expect(206);
      expect(longSuffix.headers['content-range']).toBe(`bytes 0-${bytes.length - 1}/${bytes.length}`);
      expect(longSuffix.body).toEqual(bytes);
      await get({ Range: 'bytes=-0' }).expect(416);
      const tail = await get({ Range: `bytes=${bytes.length - 3}-${bytes.length + 100}` }).expect(206);
      expect(tail.headers['content-range']).toBe(
        `bytes ${bytes.length - 3}-${bytes.length - 1}/${bytes.length}`,
      );
      // Unsatisfiable: 416 with the size, as a problem.
      const past = await get({ Range: `bytes=${bytes.length}-` }).expect(416);
      expect(past.headers['content-range']).toBe(`bytes */${bytes.length}`);
      // HEAD: the headers a GET would send, no body.
      const head = await request(store.app)
        .head(`/calibrations/${up.body.id}/archive`)
        .set(auth)
        .set('Range', 'bytes=2-5')
        .expect(206);
      expect(head.headers['content-length']).toBe('4');
      // Revalidation is by ETag; If-Modified-Since alone could hide a newer archive of its second.
      await request(store.app)
        .get(`/calibrations/${up.body.id}/archive`)
        .set(auth)
        .set('If-None-Match', etag)
        .expect(304);
      await request(store.app)
        .get(`/calibrations/${up.body.id}/archive`)
        .set(auth)
        .set('If-Modified-Since', lastModified)
        .expect(200);
    });

    it('answers 500 ARCHIVE_MISSING, not a hang or a crash, when the bytes are gone from the store', async () => {
      const up = await upload('lost', 'n', zipA).expect(200);
      await store.blobs.remove(up.body.sha256);
      for (const path of [`/calibrations/${up.body.id}/archive`, `/calibrations/${up.body.id}/entries`]) {
        const res = await request(store.app).get(path).set(auth).expect(500);
        expect([path, res.headers['content-type'], res.body.code]).toEqual([
          path,
          'application/problem+json; charset=utf-8',
          'ARCHIVE_MISSING',
        ]);
      }
      await request(store.app).head(`/calibrations/${up.body.id}/archive`).set(auth).expect(500);
      const json = await request(store.app)
        .post('/calibrations/download')
        .set(auth)
        .send({ hashID: 'lost' })
        .expect(500);
      expect(json.body.code).toBe('ARCHIVE_MISSING');
      await request(store.app).get('/health').expect(200);
    });

    it('pages and filters lists', async () => {
      for (let i = 0; i < 5; i++) await upload(i % 2 ? 'odd' : 'even', `n${i}`, zipA).expect(200);
      const page = await request(store.app).get('/calibrations/list?limit=2&offset=1').set(auth).expect(200);
      expect(page.body).toMatchObject({ total: 5, limit: 2, offset: 1 });
      expect(page.body.items.map((i: { notes: string }) => i.notes)).toEqual(['n3', 'n2']);
      const even = await request(store.app).get('/calibrations/list?hashID=even').set(auth).expect(200);
      expect(even.body.total).toBe(3);
      const all = await request(store.app).get('/calibrations/list').set(auth).expect(200);
      const third = all.body.items[2];
      const cut = await store.knex('calibrations').where({ id: third.id }).first();
      const since = await request(store.app)
        .get(`/calibrations/list?since=${cut.created_at}`)
        .set(auth)
        .expect(200);
      expect(since.body.total).toBe(3);
      const until = await request(store.app)
        .get(`/calibrations/list?until=${new Date(Number(cut.created_at)).toISOString()}`)
        .set(auth)
        .expect(200);
      expect(until.body.total).toBe(2);
      for (const bad of [
        'limit=0',
        'limit=5000',
        'limit=abc',
        'offset=-1',
        'since=yesterday',
        'colour=red',
        'name=x',
      ]) {
        const res = await request(store.app).get(`/calibrations/list?${bad}`).set(auth);
        expect([bad, res.status]).toEqual([bad, 400]);
      }
    });

    it('deletes for admins and drops content nothing refers to', async () => {
      const a = await upload('a', '1', zipA).expect(200);
      const b = await upload('b', '2', zipA).expect(200);
      const blob = ArchiveBlobs.keyOf(a.body.sha256);
      await request(store.app).delete(`/calibrations/${a.body.id}`).expect(401);
      await request(store.app).delete(`/calibrations/${a.body.id}`).set(auth).expect(204);
      expect(await store.blobs.exists(a.body.sha256)).toBe(true);
      await request(store.app).delete(`/calibrations/${a.body.id}`).set(auth).expect(404);
      await request(store.app).delete(`/calibrations/${b.body.id}`).set(auth).expect(204);
      expect(await store.blobs.exists(a.body.sha256)).toBe(false);
      expect(blob).toContain(a.body.sha256);
      await request(store.app).get('/calibrations/latest').set(auth).expect(404);
    });

    it('keeps everything across a restart', async () => {
      const dir = tempDir('qlab-restart-');
      if (engine.name === 'postgres') return dir.cleanup(); // schema is per start; covered on SQLite
      let s = await startStore({ engine, dir: dir.dir });
      await request(s.app)
        .post('/calibrations/upload')
        .field('hashID', 'keep')
        .attach('archive', zipA)
        .expect(200);
      await s.close();
      s = await startStore({ engine, dir: dir.dir });
      const dl = await request(s.app).post('/calibrations/download').send({ hashID: 'keep' }).expect(200);
      expect(Buffer.from(dl.body.data_b64, 'base64').equals(readFileSync(zipA))).toBe(true);
      await s.close();
      dir.cleanup();
    });

    it('reports counts in /stats', async () => {
      await upload('a', '1', zipA).expect(200);
      const s = await request(store.app).get('/stats').set(auth).expect(200);
      expect(s.body).toMatchObject({ calibrations: 1, results: 0, bytes: readFileSync(zipA).length });
    });
  });
}
