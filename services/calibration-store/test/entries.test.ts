import { createWriteStream } from 'node:fs';
import path from 'node:path';
import { tempDir } from '@qlab/testkit';
import archiver from 'archiver';
import request from 'supertest';
import { type RunningStore, startStore } from './helpers';

/** A zip with a folder, a nested file, a UTF-8 name and a fixed time, written by archiver. */
async function sampleZip(file: string): Promise<string> {
  const zip = archiver('zip', { zlib: { level: 9 } });
  const out = createWriteStream(file);
  const closed = new Promise<void>((resolve, reject) => {
    out.on('close', resolve);
    zip.on('error', reject);
  });
  zip.pipe(out);
  const date = new Date('2026-11-30T12:34:56Z');
  zip.append(Buffer.alloc(0), { name: 'run/', date });
  zip.append('a'.repeat(10_000), { name: 'run/params.json', date });
  zip.append('ψ', { name: 'ψ-état.txt', date });
  zip.append('long', { name: `${'n'.repeat(3000)}.txt`, date });
  for (let i = 0; i < 5; i++) zip.append(String(i), { name: `many/${i}.txt`, date });
  await zip.finalize();
  await closed;
  return file;
}

describe('the files inside a stored archive (GET /calibrations/{id}/entries)', () => {
  let store: RunningStore;
  const files = tempDir('qlab-entries-');
  const auth = { Authorization: 'Bearer t0ken' };
  let id: number;
  beforeAll(async () => {
    store = await startStore({ apiToken: 't0ken' });
    const zip = await sampleZip(path.join(files.dir, 'sample.zip'));
    const up = await request(store.app)
      .post('/calibrations/upload')
      .set(auth)
      .field('hashID', 'h1')
      .field('notes', 'n')
      .attach('archive', zip)
      .expect(200);
    id = up.body.id;
  });
  afterAll(async () => {
    await store.close();
    files.cleanup();
  });

  it('lists names, sizes, CRCs and times from the central directory, in archive order', async () => {
    const res = await request(store.app).get(`/calibrations/${id}/entries`).set(auth).expect(200);
    expect(res.body.total).toBe(9);
    expect(res.body.entries.slice(0, 3)).toEqual([
      expect.objectContaining({ name: 'run/', size: 0, directory: true, encrypted: false }),
      expect.objectContaining({ name: 'run/params.json', size: 10_000, directory: false }),
      expect.objectContaining({ name: 'ψ-état.txt', size: 2, crc32: expect.stringMatching(/^[0-9a-f]{8}$/) }),
    ]);
    const params = res.body.entries[1];
    expect(params.compressed_size).toBeLessThan(200);
    // archiver writes an extended timestamp, so the time is exact.
    expect(params.modified).toBe('2026-11-30T12:34:56.000Z');
    // A name over 1,024 characters is cut (zip names may be 64 KiB each; a page stays small).
    const long = res.body.entries.find((e: { name: string }) => e.name.startsWith('nnn'));
    expect(long.name).toHaveLength(1025);
    expect(long.name.endsWith('…')).toBe(true);
  });

  it('pages with offset and limit', async () => {
    const res = await request(store.app)
      .get(`/calibrations/${id}/entries?offset=4&limit=2`)
      .set(auth)
      .expect(200);
    expect(res.body).toMatchObject({ total: 9, offset: 4, limit: 2 });
    expect(res.body.entries.map((e: { name: string }) => e.name)).toEqual(['many/0.txt', 'many/1.txt']);
    const past = await request(store.app).get(`/calibrations/${id}/entries?offset=100`).set(auth).expect(200);
    expect(past.body.entries).toEqual([]);
  });

  it('refuses bad queries and unknown ids with a problem, and callers without the token', async () => {
    for (const q of ['offset=-1', 'limit=0', 'limit=10001', 'limit=x', 'extra=1']) {
      const res = await request(store.app).get(`/calibrations/${id}/entries?${q}`).set(auth).expect(400);
      expect(res.headers['content-type']).toMatch(/application\/problem\+json/);
    }
    await request(store.app).get('/calibrations/999999/entries').set(auth).expect(404);
    await request(store.app).get('/calibrations/abc/entries').set(auth).expect(400);
    await request(store.app).get('/results/1/entries').set(auth).expect(404);
    await request(store.app).get(`/calibrations/${id}/entries`).expect(401);
  });
});
