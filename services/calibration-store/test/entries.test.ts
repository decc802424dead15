import { createWriteStream, writeFileSync } from 'node:fs';
import path from 'node:path';
import { crc32 } from 'node:zlib';
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

/**
 * A zip of stored entries with only DOS times (no extended timestamp), by APPNOTE 4.3: local
 * headers, then the central directory, then its end record.
 */
function dosZip(entries: { name: string; date: number; time: number }[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = Buffer.from(e.name);
    const data = Buffer.from('x');
    const crc = crc32(data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(e.time, 10);
    local.writeUInt16LE(e.date, 12);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(1, 18);
    local.writeUInt32LE(1, 22);
    local.writeUInt16LE(name.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(e.time, 12);
    central.writeUInt16LE(e.date, 14);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(1, 20);
    central.writeUInt32LE(1, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE(offset, 42);
    locals.push(local, name, data);
    centrals.push(central, name);
    offset += 30 + name.length + 1;
  }
  const dir = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(dir.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, dir, end]);
}

const dosDate = (y: number, m: number, d: number) => ((y - 1980) << 9) | (m << 5) | d;
const dosTime = (h: number, min: number, s: number) => (h << 11) | (min << 5) | (s / 2);

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

  it("reads DOS times as UTC, and garbled ones (month 13, 25 o'clock, 31 February) as null", async () => {
    const file = path.join(files.dir, 'dos.zip');
    writeFileSync(
      file,
      dosZip([
        { name: 'ok.txt', date: dosDate(2026, 11, 30), time: dosTime(12, 34, 56) },
        { name: 'month13.txt', date: dosDate(2026, 13, 1), time: 0 },
        { name: 'hour25.txt', date: dosDate(2026, 1, 1), time: dosTime(25, 0, 0) },
        { name: 'feb31.txt', date: dosDate(2026, 2, 31), time: 0 },
        { name: 'day0.txt', date: dosDate(2026, 1, 0), time: 0 },
      ]),
    );
    const up = await request(store.app)
      .post('/calibrations/upload')
      .set(auth)
      .field('hashID', 'dos')
      .field('notes', 'n')
      .attach('archive', file)
      .expect(200);
    const res = await request(store.app).get(`/calibrations/${up.body.id}/entries`).set(auth).expect(200);
    expect(
      res.body.entries.map((e: { name: string; modified: string | null }) => [e.name, e.modified]),
    ).toEqual([
      ['ok.txt', '2026-11-30T12:34:56.000Z'],
      ['month13.txt', null],
      ['hour25.txt', null],
      ['feb31.txt', null],
      ['day0.txt', null],
    ]);
  });

  it('pages deep into a zip of 30,000 entries (the central directory is read in blocks)', async () => {
    const file = path.join(files.dir, 'many.zip');
    const entries = Array.from({ length: 30_000 }, (_, i) => ({
      name: `run/${String(i).padStart(5, '0')}.json`,
      date: dosDate(2026, 1, 1),
      time: 0,
    }));
    writeFileSync(file, dosZip(entries));
    const up = await request(store.app)
      .post('/calibrations/upload')
      .set(auth)
      .field('hashID', 'many')
      .field('notes', 'n')
      .attach('archive', file)
      .expect(200);
    const res = await request(store.app)
      .get(`/calibrations/${up.body.id}/entries?offset=29998&limit=5`)
      .set(auth)
      .expect(200);
    expect(res.body.total).toBe(30_000);
    expect(res.body.entries.map((e: { name: string }) => e.name)).toEqual([
      'run/29998.json',
      'run/29999.json',
    ]);
  });

  it('refuses a zip cut short in its central directory', async () => {
    const whole = dosZip([{ name: 'a.txt', date: dosDate(2026, 1, 1), time: 0 }]);
    const file = path.join(files.dir, 'cut.zip');
    // Keep the end record but lose half the central directory before it.
    writeFileSync(file, Buffer.concat([whole.subarray(0, whole.length - 22 - 30), whole.subarray(-22)]));
    const res = await request(store.app)
      .post('/calibrations/upload')
      .set(auth)
      .field('hashID', 'cut')
      .field('notes', 'n')
      .attach('archive', file);
    expect(res.status).toBe(415);
    expect(res.headers['content-type']).toMatch(/problem\+json/);
  });
});
