import { silentLogger } from '@qlab/kit';
import { pgTestUrl, waitFor } from '@qlab/testkit';
import request from 'supertest';
import { LOG_LINE_MAX, LOG_LINES_PER_JOB } from '../src/storage/job-logs';
import { HttpJobSource } from '../src/worker/http-source';
import { LocalJobSource } from '../src/worker/local-source';
import { WorkerPool } from '../src/worker/pool';
import type { Handler, JobSource } from '../src/worker/types';
import { type RunningQueue, startQueue } from './helpers';

const pgUrl = pgTestUrl('job logs on PostgreSQL');
const engines: [string, string | undefined][] = [
  ['SQLite', undefined],
  ...(pgUrl ? [['PostgreSQL', pgUrl] as [string, string]] : []),
];
const auth = { Authorization: 'Bearer jobs-token' };

describe.each(engines)('job logs on %s (log(line), GET /jobs/{id}/logs)', (_engine, url) => {
  let q: RunningQueue;
  let pool: WorkerPool | undefined;
  beforeEach(async () => {
    q = await startQueue({ apiToken: 'jobs-token', pgUrl: url });
  });
  afterEach(async () => {
    await pool?.stop();
    pool = undefined;
    await q.close();
  });

  const run = (source: JobSource, handlers: Record<string, Handler>) => {
    pool = new WorkerPool({ source, handlers, pollIntervalMs: 10, logger: silentLogger() });
    pool.start();
  };
  const ended = (id: string) =>
    waitFor(async () => ['completed', 'error'].includes((await q.repo.get(id))?.status ?? ''), 10_000);

  it.each([
    ['in-process', (q: RunningQueue) => new LocalJobSource(q.repo, q.workspace, 3000)],
    ['over HTTP', (q: RunningQueue) => new HttpJobSource(q.url, 'jobs-token', 3000)],
  ])('keeps every line a handler wrote, per attempt, including a failed one (%s)', async (_how, source) => {
    const [job] = await q.repo.add([{ task_type: 'talk', max_retries: 1 }]);
    const id = job!.job_id;
    let attempt = 0;
    run(source(q), {
      talk: async ({ log }) => {
        attempt++;
        log(`attempt ${attempt} starts`);
        log('ünïcödé ✓ and a\nsecond line in one');
        if (attempt === 1) throw new Error('first attempt fails');
        // Longer than any heartbeat: lines sent mid-run and at the end both arrive.
        await new Promise((r) => setTimeout(r, 1200));
        log('done');
        return {};
      },
    });
    await ended(id);
    // A failed attempt is retried after its backoff; wait for the second to finish.
    await waitFor(async () => (await q.repo.get(id))?.status === 'completed', 15_000);
    const res = await request(q.app).get(`/jobs/${id}/logs`).set(auth).expect(200);
    expect(res.body.lines.map((l: { attempt: number; line: string }) => [l.attempt, l.line])).toEqual([
      [1, 'attempt 1 starts'],
      [1, 'ünïcödé ✓ and a\nsecond line in one'],
      [2, 'attempt 2 starts'],
      [2, 'ünïcödé ✓ and a\nsecond line in one'],
      [2, 'done'],
    ]);
    expect(res.body.next_after).toBe(res.body.lines[4].seq);
    // Paging: after a seq, with a limit.
    const page = await request(q.app)
      .get(`/jobs/${id}/logs?after=${res.body.lines[1].seq}&limit=2`)
      .set(auth)
      .expect(200);
    expect(page.body.lines.map((l: { line: string }) => l.line)).toEqual([
      'attempt 2 starts',
      'ünïcödé ✓ and a\nsecond line in one',
    ]);
    // Deleted with the job.
    await request(q.app).delete(`/jobs/${id}`).set(auth).expect(204);
    expect(await q.knex('job_logs').where({ job_id: id }).count({ n: '*' })).toEqual([
      { n: expect.anything() },
    ]);
    expect(Number((await q.knex('job_logs').count({ n: '*' }).first())?.n)).toBe(0);
  });

  it('takes lines only from the worker holding the job', async () => {
    await q.repo.add([{ job_id: 'held', task_type: 't' }]);
    const claimed = (await q.repo.claim('w1', ['t'], 30_000))!;
    const post = (body: unknown) =>
      request(q.app)
        .post('/jobs/held/logs')
        .set(auth)
        .send(body as object);
    await post({ worker_id: 'w1', attempt: claimed.attempt, lines: ['ok'] }).expect(200, {
      kept: 1,
      dropped: 0,
    });
    expect(
      (await post({ worker_id: 'w2', attempt: claimed.attempt, lines: ['x'] }).expect(409)).body.detail,
    ).toMatch(/not held by w2/);
    await post({ worker_id: 'w1', attempt: claimed.attempt + 1, lines: ['x'] }).expect(409);
    await request(q.app)
      .post('/jobs/nope/logs')
      .set(auth)
      .send({ worker_id: 'w1', attempt: 1, lines: ['x'] })
      .expect(409);
    // Once the job is finished, its log is closed too.
    await q.repo.complete('held', { workerId: 'w1', attempt: claimed.attempt }, {});
    await post({ worker_id: 'w1', attempt: claimed.attempt, lines: ['late'] }).expect(409);
    const res = await request(q.app).get('/jobs/held/logs').set(auth).expect(200);
    expect(res.body.lines.map((l: { line: string }) => l.line)).toEqual(['ok']);
  });

  it('refuses bad input with a problem, and answers 404 for an unknown job', async () => {
    await q.repo.add([{ job_id: 'b', task_type: 't' }]);
    const claimed = (await q.repo.claim('w1', ['t'], 30_000))!;
    const lease = { worker_id: 'w1', attempt: claimed.attempt };
    const bad: unknown[] = [
      { ...lease, lines: [] },
      { ...lease, lines: 'one line' },
      { ...lease, lines: [1] },
      { ...lease, lines: ['x'.repeat(LOG_LINE_MAX + 1)] },
      { ...lease, lines: Array(1001).fill('x') },
      { ...lease, lines: ['x'], extra: true },
      { worker_id: '../w', attempt: 1, lines: ['x'] },
    ];
    for (const body of bad) {
      const res = await request(q.app)
        .post('/jobs/b/logs')
        .set(auth)
        .send(body as object)
        .expect(400);
      expect(res.headers['content-type']).toMatch(/application\/problem\+json/);
    }
    await request(q.app)
      .post('/jobs/b/logs')
      .set(auth)
      .set('Content-Type', 'application/json')
      .send('{"lines":')
      .expect(400);
    await request(q.app)
      .post('/jobs/b/logs')
      .send({ ...lease, lines: ['x'] })
      .expect(401);
    for (const query of ['after=-1', 'after=x', 'limit=0', 'limit=1001', 'other=1'])
      await request(q.app).get(`/jobs/b/logs?${query}`).set(auth).expect(400);
    await request(q.app).get('/jobs/none/logs').set(auth).expect(404);
    await request(q.app).get('/jobs/b/logs').expect(401);
  });

  it(`keeps at most ${LOG_LINES_PER_JOB} lines per job and says how many it dropped`, async () => {
    await q.repo.add([{ job_id: 'big', task_type: 't' }]);
    const claimed = (await q.repo.claim('w1', ['t'], 60_000))!;
    const lease = { worker_id: 'w1', attempt: claimed.attempt };
    for (let i = 0; i < LOG_LINES_PER_JOB / 1000; i++)
      await request(q.app)
        .post('/jobs/big/logs')
        .set(auth)
        .send({ ...lease, lines: Array(1000).fill(`line ${i}`) })
        .expect(200, { kept: 1000, dropped: 0 });
    await request(q.app)
      .post('/jobs/big/logs')
      .set(auth)
      .send({ ...lease, lines: ['one too many', 'two'] })
      .expect(200, { kept: 0, dropped: 2 });
    const last = await request(q.app).get(`/jobs/big/logs?after=0&limit=1000`).set(auth).expect(200);
    expect(last.body.lines).toHaveLength(1000);
  });

  it('sends long lines in requests under the API body limit, so none is refused for size', async () => {
    const [job] = await q.repo.add([{ task_type: 'wide' }]);
    run(new HttpJobSource(q.url, 'jobs-token', 3000), {
      wide: async ({ log }) => {
        for (let i = 0; i < 200; i++) log(`${i} ${'é'.repeat(LOG_LINE_MAX - 10)}`);
        return {};
      },
    });
    await ended(job!.job_id);
    const stored = await q.knex('job_logs').where({ job_id: job!.job_id }).count({ n: '*' }).first();
    expect(Number(stored?.n)).toBe(200);
  });

  it('a handler writing faster than lines are sent loses only the excess, and says so', async () => {
    const [job] = await q.repo.add([{ task_type: 'flood' }]);
    run(new LocalJobSource(q.repo, q.workspace, 3000), {
      flood: async ({ log }) => {
        for (let i = 0; i < 1500; i++) log(`line ${i}`);
        log({ toString: () => 'not a string' } as unknown as string);
        log('x'.repeat(LOG_LINE_MAX * 2));
        return {};
      },
    });
    await ended(job!.job_id);
    const all: string[] = [];
    let after = 0;
    for (;;) {
      const page = await request(q.app).get(`/jobs/${job!.job_id}/logs?after=${after}&limit=1000`).set(auth);
      if (page.body.lines.length === 0) break;
      all.push(...page.body.lines.map((l: { line: string }) => l.line));
      after = page.body.next_after;
    }
    expect(all).toHaveLength(1000);
    expect(all[998]).toBe('line 998');
    expect(all[999]).toMatch(/^\[qlab\] 503 log lines dropped/);
  });
});
