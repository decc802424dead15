import { pgTestUrl } from '@qlab/testkit';
import request from 'supertest';
import { type RunningQueue, startQueue } from './helpers';

const pgUrl = pgTestUrl('the completions series on PostgreSQL');
const engines: [string, string | undefined][] = [
  ['SQLite', undefined],
  ...(pgUrl ? [['PostgreSQL', pgUrl] as [string, string]] : []),
];
const NOW = Date.parse('2026-12-03T10:30:30Z');

describe.each(engines)('jobs completed per bucket on %s (GET /jobs/stats/completed)', (_engine, url) => {
  let q: RunningQueue;
  const auth = { Authorization: 'Bearer jobs-token' };
  beforeAll(async () => {
    q = await startQueue({ apiToken: 'jobs-token', outboxOnly: true, pgUrl: url, now: () => NOW });
    // Three completed in the minute 10:28, one in 10:30, one an hour and more ago, one failed.
    const done = async (id: string, at: number, ok = true) => {
      await q.repo.add([{ job_id: id, task_type: 't', max_retries: 0 }]);
      const c = (await q.repo.claim(`w-${id}`, ['t'], 30_000))!;
      const lease = { workerId: `w-${id}`, attempt: c.attempt };
      if (ok) await q.repo.complete(id, lease, null);
      else await q.repo.fail(id, lease, 'boom');
      await q.knex('jobs').where({ job_id: id }).update({ completed_at: at });
    };
    const t = (hhmmss: string) => Date.parse(`2026-12-03T${hhmmss}Z`);
    await done('a', t('10:28:00'));
    await done('b', t('10:28:30'));
    await done('c', t('10:28:59'));
    await done('d', t('10:30:10'));
    await done('old', t('09:20:00'));
    await done('failed', t('10:28:10'), false);
  });
  afterAll(() => q.close());

  it('counts completions per minute over the last hour, empty minutes included, oldest first', async () => {
    const res = await request(q.app).get('/jobs/stats/completed').set(auth).expect(200);
    expect(res.body.bucket_s).toBe(60);
    const series = res.body.series as { at: number; completed: number }[];
    expect(series).toHaveLength(60);
    expect(series.at(-1)!.at).toBe(Date.parse('2026-12-03T10:30:00Z'));
    expect(series[0]!.at).toBe(Date.parse('2026-12-03T09:31:00Z'));
    const nonZero = series
      .filter((b) => b.completed > 0)
      .map((b) => [new Date(b.at).toISOString(), b.completed]);
    expect(nonZero).toEqual([
      ['2026-12-03T10:28:00.000Z', 3],
      ['2026-12-03T10:30:00.000Z', 1],
    ]);
  });

  it('takes other spans and bucket sizes, and refuses bad ones with a problem', async () => {
    const day = await request(q.app)
      .get('/jobs/stats/completed?minutes=180&bucket_s=3600')
      .set(auth)
      .expect(200);
    expect(day.body.series.map((b: { completed: number }) => b.completed)).toEqual([0, 1, 4]);
    for (const bad of [
      'minutes=0',
      'minutes=x',
      'bucket_s=0',
      'bucket_s=86401',
      'minutes=44641',
      'minutes=44640&bucket_s=1',
      'other=1',
    ]) {
      const res = await request(q.app).get(`/jobs/stats/completed?${bad}`).set(auth);
      expect([bad, res.status, res.headers['content-type']]).toEqual([
        bad,
        400,
        expect.stringMatching(/problem\+json/),
      ]);
    }
    await request(q.app).get('/jobs/stats/completed').expect(401);
  });
});
