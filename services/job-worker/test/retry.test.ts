import { OUTBOX_TABLE } from '@qlab/events';
import { pgTestUrl } from '@qlab/testkit';
import request from 'supertest';
import { type RunningQueue, startQueue } from './helpers';

/** A job that has failed for good: claimed once and failed with no retries left. */
async function failedJob(q: RunningQueue, id: string, taskType = 't') {
  await q.repo.add([{ job_id: id, task_type: taskType, max_retries: 0 }]);
  const claimed = (await q.repo.claim(`w-${id}`, [taskType], 30_000))!;
  return q.repo.fail(id, { workerId: `w-${id}`, attempt: claimed.attempt }, `boom ${id}`);
}

const pgUrl = pgTestUrl('job retries on PostgreSQL');
const engines: [string, string | undefined][] = [
  ['SQLite', undefined],
  ...(pgUrl ? [['PostgreSQL', pgUrl] as [string, string]] : []),
];

describe.each(engines)(
  'retrying jobs on %s (POST /jobs/{id}/retry, POST /jobs/retry-failed)',
  (_engine, url) => {
    let q: RunningQueue;
    const auth = { Authorization: 'Bearer jobs-token' };
    beforeEach(async () => {
      q = await startQueue({ apiToken: 'jobs-token', outboxOnly: true, pgUrl: url });
    });
    afterEach(() => q.close());

    it('puts a failed job back in the queue as a fresh run, keeping its error history', async () => {
      const failed = await failedJob(q, 'a');
      expect(failed.status).toBe('error');
      const res = await request(q.app).post('/jobs/a/retry').set(auth).expect(200);
      expect(res.body).toMatchObject({
        status: 'queued',
        retry_count: 0,
        progress: 0,
        output: null,
        error_message: null,
        started_at: null,
        completed_at: null,
      });
      expect(res.body.errors.map((e: { message: string }) => e.message)).toEqual(['boom a']);
      // A worker gets it again, with a new attempt.
      const again = await q.repo.claim('w2', ['t'], 30_000);
      expect(again).toMatchObject({ job_id: 'a', attempt: failed.attempt + 1 });
      const events = await q.knex(OUTBOX_TABLE).orderBy('seq').select('topic');
      expect(events.map((e) => e.topic).slice(-2)).toEqual([
        'qlab/job-worker/job.queued',
        'qlab/job-worker/job.started',
      ]);
    });

    it('retries a cancelled job, and refuses one that is queued, running or done', async () => {
      await q.repo.add([{ job_id: 'c', task_type: 't' }]);
      await q.repo.cancel('c');
      await request(q.app).post('/jobs/c/retry').set(auth).expect(200);
      // Now queued: a second retry is a 409, as is a running or a completed job.
      expect((await request(q.app).post('/jobs/c/retry').set(auth).expect(409)).body.detail).toMatch(
        /queued/,
      );
      const run = (await q.repo.claim('w', ['t'], 30_000))!;
      await request(q.app).post('/jobs/c/retry').set(auth).expect(409);
      await q.repo.complete('c', { workerId: 'w', attempt: run.attempt }, { ok: true });
      await request(q.app).post('/jobs/c/retry').set(auth).expect(409);
      await request(q.app).post('/jobs/nope/retry').set(auth).expect(404);
      await request(q.app).post('/jobs/c/retry').expect(401);
    });

    it('retries every failed job, or those of one task type, and refuses bad bodies', async () => {
      await failedJob(q, 'x1', 'x');
      await failedJob(q, 'x2', 'x');
      await failedJob(q, 'y1', 'y');
      const only = await request(q.app)
        .post('/jobs/retry-failed')
        .set(auth)
        .send({ task_type: 'y' })
        .expect(200);
      expect(only.body).toEqual({ retried: 1, job_ids: ['y1'] });
      const all = await request(q.app).post('/jobs/retry-failed').set(auth).send({}).expect(200);
      expect(all.body.job_ids.sort()).toEqual(['x1', 'x2']);
      expect((await request(q.app).post('/jobs/retry-failed').set(auth).expect(200)).body.retried).toBe(0);
      await request(q.app).post('/jobs/retry-failed').set(auth).send({ task_type: '' }).expect(400);
      await request(q.app).post('/jobs/retry-failed').set(auth).send({ status: 'completed' }).expect(400);
      await request(q.app)
        .post('/jobs/retry-failed')
        .set(auth)
        .set('Content-Type', 'application/json')
        .send('{"task_type": ')
        .expect(400);
    });
  },
);
