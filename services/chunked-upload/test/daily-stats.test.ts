import { pgTestUrl } from '@qlab/testkit';
import request from 'supertest';
import { auth, type RunningUploads, startUploads } from './helpers';

const pgUrl = pgTestUrl('the daily upload series on PostgreSQL');
const engines: [string, string | undefined][] = [
  ['SQLite', undefined],
  ...(pgUrl ? [['PostgreSQL', pgUrl] as [string, string]] : []),
];
const NOW = Date.parse('2026-12-03T10:00:00Z');
const tus = { 'Tus-Resumable': '1.0.0' };

describe.each(engines)('bytes uploaded per day on %s (GET /stats/daily)', (_engine, url) => {
  let up: RunningUploads;
  beforeAll(async () => {
    up = await startUploads({ now: () => NOW, pgUrl: url });
    const finished = async (bytes: number, completedAt: string) => {
      const res = await request(up.app)
        .post('/files')
        .set(auth)
        .set(tus)
        .set({ 'Upload-Length': String(bytes), 'Content-Type': 'application/offset+octet-stream' })
        .send(Buffer.alloc(bytes, 1))
        .expect(201);
      const id = res.headers.location!.split('/').pop()!;
      await up
        .knex('uploads')
        .where({ id })
        .update({ completed_at: Date.parse(completedAt) });
    };
    await finished(100, '2026-12-03T00:00:00Z');
    await finished(50, '2026-12-03T09:59:59Z');
    await finished(7, '2026-12-01T23:59:59Z');
    await finished(9, '2026-11-01T12:00:00Z');
    // An unfinished upload counts nowhere.
    await request(up.app).post('/files').set(auth).set(tus).set({ 'Upload-Length': '10' }).expect(201);
  });
  afterAll(() => up.close());

  it('sums finished uploads per UTC day, today included, empty days as zero', async () => {
    const res = await request(up.app).get('/stats/daily?days=3').set(auth).expect(200);
    expect(res.body).toEqual({
      days: 3,
      series: [
        { day: '2026-12-01', uploads: 1, bytes: 7 },
        { day: '2026-12-02', uploads: 0, bytes: 0 },
        { day: '2026-12-03', uploads: 2, bytes: 150 },
      ],
    });
    const two = await request(up.app).get('/stats/daily').set(auth).expect(200);
    expect(two.body.series).toHaveLength(14);
  });

  it('refuses bad queries with a problem and callers without a key', async () => {
    for (const bad of ['days=0', 'days=367', 'days=x', 'days=1.5', 'other=1']) {
      const res = await request(up.app).get(`/stats/daily?${bad}`).set(auth);
      expect([bad, res.status, res.headers['content-type']]).toEqual([
        bad,
        400,
        expect.stringMatching(/problem\+json/),
      ]);
    }
    await request(up.app).get('/stats/daily').expect(401);
  });
});
