import { readFileSync, watch, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import path from 'node:path';
import { tempDir, waitFor } from '@qlab/testkit';
import request from 'supertest';
import { answerOf, countRows, makeZip, type RunningStore, startStore } from './helpers';

describe('calibration store refuses bad input and leaves nothing behind', () => {
  let store: RunningStore;
  const files = tempDir('qlab-bad-');
  let zip: string;
  const auth = { Authorization: 'Bearer t0ken' };

  beforeAll(async () => {
    zip = await makeZip(path.join(files.dir, 'ok.zip'), { 'x.txt': 'x' });
  });
  beforeEach(async () => {
    store = await startStore({
      apiToken: 't0ken',
      adminToken: 'adm1n',
      maxUploadBytes: 64 * 1024,
      jsonDownloadMaxBytes: 200,
    });
  });
  afterEach(async () => store.close());
  afterAll(() => files.cleanup());

  async function expectNothingStored() {
    expect(await store.blobs.tempFiles()).toEqual([]);
    expect(await countRows(store.knex, 'calibrations')).toBe(0);
  }

  /**
   * Temp files made while `work` runs, seen by watching the temp folder: a check that none is
   * left proves something only if one was made.
   */
  async function tempFilesMadeBy(work: () => Promise<unknown>): Promise<number> {
    const made = new Set<string>();
    const watcher = watch(store.blobs.tmpDir, (_event, name) => {
      if (name?.endsWith('.part')) made.add(name);
    });
    try {
      await work();
      return made.size;
    } finally {
      watcher.close();
    }
  }

  it('needs the token on API routes but not on health', async () => {
    await request(store.app)
      .get('/health')
      .expect(200, /"status":"ok"/);
    await request(store.app).get('/calibrations/list').expect(401);
    await request(store.app).get('/calibrations/list').set('Authorization', 'Bearer nope').expect(401);
    await request(store.app).get('/calibrations/list').set('Authorization', 'Basic dDBrZW4=').expect(401);
    const up = await request(store.app)
      .post('/calibrations/upload')
      .field('hashID', 'h')
      .attach('archive', zip);
    expect(up.status).toBe(401);
    await expectNothingStored();
  });

  it('lets only the admin token delete', async () => {
    const up = await request(store.app)
      .post('/calibrations/upload')
      .set(auth)
      .field('hashID', 'h')
      .attach('archive', zip);
    await request(store.app).delete(`/calibrations/${up.body.id}`).set(auth).expect(403);
    await request(store.app)
      .delete(`/calibrations/${up.body.id}`)
      .set('Authorization', 'Bearer adm1n')
      .expect(204);
  });

  it('refuses missing fields', async () => {
    const noHash = await request(store.app)
      .post('/calibrations/upload')
      .set(auth)
      .field('notes', 'n')
      .attach('archive', zip);
    expect(noHash.status).toBe(400);
    expect(noHash.body.detail).toContain('hashID');
    const noFile = await request(store.app).post('/calibrations/upload').set(auth).field('hashID', 'h');
    expect(noFile.status).toBe(400);
    expect(noFile.body.detail).toContain('archive');
    const noName = await request(store.app)
      .post('/results/upload')
      .set(auth)
      .field('hashID', 'h')
      .attach('archive', zip);
    expect(noName.status).toBe(400);
    expect(noName.body.detail).toContain('name');
    const blank = await request(store.app)
      .post('/calibrations/upload')
      .set(auth)
      .field('hashID', '   ')
      .attach('archive', zip);
    expect(blank.status).toBe(400);
    const control = await request(store.app)
      .post('/calibrations/upload')
      .set(auth)
      .field('hashID', 'a\u0000b')
      .attach('archive', zip);
    expect(control.status).toBe(400);
    await expectNothingStored();
  });

  it('refuses files that are not zip archives, and bodies that are not multipart', async () => {
    const text = path.join(files.dir, 'notes.zip');
    writeFileSync(text, 'this is not a zip, whatever its name says');
    const res = await request(store.app)
      .post('/calibrations/upload')
      .set(auth)
      .field('hashID', 'h')
      .attach('archive', text);
    expect(res.status).toBe(415);
    expect(res.body.detail).toMatch(/not a valid zip/);
    const truncated = path.join(files.dir, 'truncated.zip');
    writeFileSync(truncated, readFileSync(zip).subarray(0, 40));
    await request(store.app)
      .post('/calibrations/upload')
      .set(auth)
      .field('hashID', 'h')
      .attach('archive', truncated)
      .expect(415);
    await request(store.app).post('/calibrations/upload').set(auth).send({ hashID: 'h' }).expect(415);
    await request(store.app)
      .post('/calibrations/upload')
      .set(auth)
      .set('Content-Type', 'multipart/form-data')
      .send('garbage')
      .expect(400);
    await expectNothingStored();
  });

  it('refuses more than one file or a file under another field name', async () => {
    const two = await request(store.app)
      .post('/calibrations/upload')
      .set(auth)
      .field('hashID', 'h')
      .attach('archive', zip)
      .attach('archive', zip);
    expect(two.status).toBe(400);
    const other = await request(store.app)
      .post('/calibrations/upload')
      .set(auth)
      .field('hashID', 'h')
      .attach('file', zip);
    expect(other.status).toBe(400);
    expect(other.body.detail).toContain('"archive"');
    await expectNothingStored();
  });

  it('refuses uploads above the limit, by Content-Length and while streaming', async () => {
    const big = path.join(files.dir, 'big.zip');
    await makeZip(big, { 'random.bin': require('node:crypto').randomBytes(200 * 1024) });
    // Refused while the body is still going out, so read the answer off a raw socket.
    const body = Buffer.concat([
      Buffer.from('--XB\r\nContent-Disposition: form-data; name="hashID"\r\n\r\nh\r\n'),
      Buffer.from('--XB\r\nContent-Disposition: form-data; name="archive"; filename="big.zip"\r\n\r\n'),
      readFileSync(big),
      Buffer.from('\r\n--XB--\r\n'),
    ]);
    const head = `POST /calibrations/upload HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth.Authorization}\r\nContent-Type: multipart/form-data; boundary=XB\r\n`;
    expect(await answerOf(store.url, head, body)).toBe(413);
    const detail = await request(store.app)
      .post('/calibrations/upload')
      .set(auth)
      .set('Content-Length', String(10 * 1024 * 1024))
      .set('Content-Type', 'multipart/form-data; boundary=XB')
      .send('');
    expect(detail.body.detail).toContain('QIBO_MAX_UPLOAD_BYTES');

    // Chunked (no Content-Length): the limit must trip mid-stream.
    let status = 0;
    const made = await tempFilesMadeBy(async () => {
      status = await new Promise<number>((resolve, reject) => {
        const url = new URL(`${store.url}/calibrations/upload`);
        const boundary = 'XbOuNdArY';
        const req = httpRequest(
          {
            host: url.hostname,
            port: url.port,
            path: url.pathname,
            method: 'POST',
            headers: {
              ...auth,
              'Content-Type': `multipart/form-data; boundary=${boundary}`,
              'Transfer-Encoding': 'chunked',
            },
          },
          (r) => {
            r.resume();
            resolve(r.statusCode ?? 0);
          },
        );
        req.on('error', reject);
        req.write(`--${boundary}\r\nContent-Disposition: form-data; name="hashID"\r\n\r\nh\r\n`);
        req.write(
          `--${boundary}\r\nContent-Disposition: form-data; name="archive"; filename="x.zip"\r\n\r\n`,
        );
        const chunk = Buffer.alloc(16 * 1024, 1);
        let sent = 0;
        const pump = () => {
          while (sent < 400 * 1024) {
            sent += chunk.length;
            if (!req.write(chunk)) return req.once('drain', pump);
          }
          req.end(`\r\n--${boundary}--\r\n`);
        };
        pump();
      }).catch(() => 413);
      await waitFor(async () => (await store.blobs.tempFiles()).length === 0);
    });
    expect(status).toBe(413);
    expect(made).toBeGreaterThan(0);
    await expectNothingStored();
  });

  it('keeps hostile file names as harmless metadata', async () => {
    for (const name of [
      '../../../../etc/passwd',
      '..\\..\\windows\\system32',
      '/abs/path.zip',
      `${'a'.repeat(600)}.zip`,
      '..',
      'caf\u00e9 \u202e.zip',
    ]) {
      const res = await request(store.app)
        .post('/calibrations/upload')
        .set(auth)
        .field('hashID', 'evil')
        .attach('archive', zip, { filename: name, contentType: 'application/zip' });
      expect([name, res.status, res.body.detail]).toEqual([name, 200, undefined]);
      const meta = await request(store.app).get(`/calibrations/${res.body.id}`).set(auth).expect(200);
      expect(meta.body.filename).not.toMatch(/[\\/\u0000-\u001f]/);
      expect(meta.body.filename.length).toBeLessThanOrEqual(255);
      expect(meta.body.filename).not.toBe('..');
      const dl = await request(store.app).get(`/calibrations/${res.body.id}/archive`).set(auth).expect(200);
      expect(dl.headers['content-disposition']).not.toContain('/');
    }
    // Control characters in a part header are malformed multipart: refused outright.
    for (const name of ['bell\u0007.zip', 'nul\u0000.zip']) {
      const res = await request(store.app)
        .post('/calibrations/upload')
        .set(auth)
        .field('hashID', 'evil')
        .attach('archive', zip, { filename: name, contentType: 'application/zip' });
      expect(res.status).toBe(400);
    }
    expect(await store.blobs.tempFiles()).toEqual([]);
  });

  it('answers malformed JSON and bad selectors with 400', async () => {
    const res = await request(store.app)
      .post('/calibrations/download')
      .set(auth)
      .set('Content-Type', 'application/json')
      .send('{"hashID": ');
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('MALFORMED_JSON');
    await request(store.app).post('/calibrations/download').set(auth).send({ hashID: 42 }).expect(400);
    await request(store.app).post('/calibrations/download').set(auth).send({}).expect(400);
  });

  it('names the streaming endpoint when an archive is too big for the JSON download', async () => {
    const big = path.join(files.dir, 'mid.zip');
    await makeZip(big, { 'data.bin': require('node:crypto').randomBytes(1000) });
    const up = await request(store.app)
      .post('/calibrations/upload')
      .set(auth)
      .field('hashID', 'big')
      .attach('archive', big)
      .expect(200);
    const res = await request(store.app)
      .post('/calibrations/download')
      .set(auth)
      .send({ hashID: 'big' })
      .expect(422);
    expect(res.body.detail).toContain(`/calibrations/${up.body.id}/archive`);
    expect(res.body.download_url).toContain(`/calibrations/${up.body.id}/archive`);
  });

  it('leaves no partial file when the client disconnects mid-upload', async () => {
    const url = new URL(`${store.url}/calibrations/upload`);
    const boundary = 'AbOrT';
    const made = await tempFilesMadeBy(async () => {
      await new Promise<void>((resolve) => {
        const req = httpRequest({
          host: url.hostname,
          port: url.port,
          path: url.pathname,
          method: 'POST',
          headers: {
            ...auth,
            'Content-Type': `multipart/form-data; boundary=${boundary}`,
            'Content-Length': String(60 * 1024),
          },
        });
        req.on('error', () => resolve());
        req.write(`--${boundary}\r\nContent-Disposition: form-data; name="hashID"\r\n\r\nh\r\n`);
        req.write(
          `--${boundary}\r\nContent-Disposition: form-data; name="archive"; filename="x.zip"\r\n\r\n`,
        );
        req.write(Buffer.alloc(20 * 1024, 7), () => {
          setTimeout(() => {
            req.destroy();
            resolve();
          }, 100);
        });
      });
      await waitFor(async () => (await store.blobs.tempFiles()).length === 0);
    });
    expect(made).toBeGreaterThan(0);
    await expectNothingStored();
  });

  it('builds download links from the gateway forwarding headers', async () => {
    const res = await request(store.app)
      .post('/calibrations/upload')
      .set(auth)
      .set('X-Forwarded-Host', 'lab.example.org')
      .set('X-Forwarded-Proto', 'https')
      .set('X-Forwarded-Prefix', '/api/store')
      .field('hashID', 'h')
      .attach('archive', zip)
      .expect(200);
    expect(res.body.download_url).toBe(
      `https://lab.example.org/api/store/calibrations/${res.body.id}/archive`,
    );
    const hostile = await request(store.app)
      .get('/calibrations/list')
      .set(auth)
      .set('X-Forwarded-Prefix', '/x"><script>')
      .expect(200);
    expect(hostile.body.items[0].download_url).not.toContain('script');
  });
});
