import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { silentLogger } from '@qlab/kit';
import { tempDir, waitFor } from '@qlab/testkit';
import request from 'supertest';
import { builtInHandlers } from '../src/worker/handlers';
import { HttpJobSource } from '../src/worker/http-source';
import { WorkerPool } from '../src/worker/pool';
import { type RunningQueue, startQueue } from './helpers';

describe('job-worker HTTP API', () => {
  let q: RunningQueue;
  const tmp = tempDir('qlab-jobs-http-');
  const auth = { Authorization: 'Bearer jobs-token' };
  beforeEach(async () => {
    q = await startQueue({ apiToken: 'jobs-token', leaseMs: 5000 });
  });
  afterEach(async () => q.close());
  afterAll(() => tmp.cleanup());

  it('creates, gets, lists, filters and pages jobs', async () => {
    const created = await request(q.app)
      .post('/jobs')
      .set(auth)
      .send({ task_type: 'checksum.sha256', params: { a: 1 }, priority: 2, created_by: 'ana' })
      .expect(201);
    expect(created.body).toMatchObject({
      status: 'queued',
      task_type: 'checksum.sha256',
      params: { a: 1 },
      priority: 2,
      created_by: 'ana',
    });
    await request(q.app).get(`/jobs/${created.body.job_id}`).set(auth).expect(200);
    const batch = await request(q.app)
      .post('/jobs/batch')
      .set(auth)
      .send({ jobs: Array.from({ length: 5 }, () => ({ task_type: 'archive.zip' })) })
      .expect(201);
    expect(batch.body.jobs).toHaveLength(5);
    const page = await request(q.app)
      .get('/jobs?task_type=archive.zip&limit=2&offset=1')
      .set(auth)
      .expect(200);
    expect(page.body).toMatchObject({ total: 5, limit: 2, offset: 1 });
    expect(page.body.items).toHaveLength(2);
    expect((await request(q.app).get('/jobs?created_by=ana').set(auth)).body.total).toBe(1);
    const stats = await request(q.app).get('/jobs/stats').set(auth).expect(200);
    expect(stats.body.queue_depth).toBe(6);
  });

  it('refuses bad input with problem+json', async () => {
    await request(q.app).post('/jobs').send({ task_type: 'x' }).expect(401);
    for (const body of [
      {},
      { task_type: '' },
      { task_type: 'a b' },
      { task_type: 'x', priority: 'high' },
      { task_type: 'x', colour: 1 },
      { task_type: 'x', run_at: 'soon' },
    ]) {
      const res = await request(q.app).post('/jobs').set(auth).send(body);
      expect([JSON.stringify(body), res.status]).toEqual([JSON.stringify(body), 400]);
    }
    await request(q.app).post('/jobs').set(auth).set('Content-Type', 'text/plain').send('x').expect(415);
    await request(q.app).get('/jobs?status=sleeping').set(auth).expect(400);
    await request(q.app).get('/jobs?limit=100000').set(auth).expect(400);
    await request(q.app).get('/jobs/nope').set(auth).expect(404);
    await request(q.app).post('/jobs/claim').set(auth).send({ worker_id: 'w', task_types: [] }).expect(400);
    const dup = { task_type: 'x', job_id: 'same' };
    await request(q.app).post('/jobs').set(auth).send(dup).expect(201);
    await request(q.app).post('/jobs').set(auth).send(dup).expect(409);
  });

  it('takes input files by multipart, lists and serves them, and refuses paths out of the job', async () => {
    const file = path.join(tmp.dir, 'data.csv');
    writeFileSync(file, 'a,b\n1,2\n');
    const res = await request(q.app)
      .post('/jobs')
      .set(auth)
      .field('task_type', 'checksum.sha256')
      .field('params', JSON.stringify({ note: 'x' }))
      .attach('file', file, { filename: '../../../etc/evil.csv' })
      .expect(201);
    expect(res.body.input_files).toEqual([
      expect.objectContaining({ relative_path: 'input/evil.csv', size: 8 }),
    ]);
    const id = res.body.job_id;
    const files = await request(q.app).get(`/jobs/${id}/files`).set(auth).expect(200);
    expect(files.body.files).toEqual([{ path: 'input/evil.csv', size: 8 }]);
    const got = await request(q.app).get(`/jobs/${id}/files/input/evil.csv`).set(auth).expect(200);
    expect(got.text).toBe('a,b\n1,2\n');
    for (const bad of ['..%2F..%2Fjobs.db', '%2Fetc%2Fpasswd', 'input%2F..%2F..%2F..%2Fjobs.db']) {
      const r = await request(q.app).get(`/jobs/${id}/files/${bad}`).set(auth);
      expect([bad, [400, 404].includes(r.status)]).toEqual([bad, true]);
    }
    await request(q.app).put(`/jobs/${id}/files/input/x`).set(auth).send('x').expect(400);
    await request(q.app)
      .put(`/jobs/${id}/files/output/..%2F..%2Fescape`)
      .set(auth)
      .type('application/octet-stream')
      .send('x')
      .expect(400);
    const bad = await request(q.app)
      .post('/jobs')
      .set(auth)
      .field('task_type', 'x')
      .field('params', '{not json')
      .attach('file', file);
    expect(bad.status).toBe(400);
    expect((await q.repo.list({ limit: 10, offset: 0 })).total).toBe(1);
  });

  it('cancels and deletes, removing the job folder', async () => {
    const a = await request(q.app).post('/jobs').set(auth).send({ task_type: 't' }).expect(201);
    await request(q.app).post(`/jobs/${a.body.job_id}/cancel`).set(auth).expect(200);
    await request(q.app).post(`/jobs/${a.body.job_id}/cancel`).set(auth).expect(409);
    await request(q.app).delete(`/jobs/${a.body.job_id}`).set(auth).expect(204);
    await request(q.app).get(`/jobs/${a.body.job_id}`).set(auth).expect(404);
    const b = await request(q.app).post('/jobs').set(auth).send({ task_type: 't' }).expect(201);
    await request(q.app)
      .post('/jobs/claim')
      .set(auth)
      .send({ worker_id: 'w', task_types: ['t'] })
      .expect(200);
    await request(q.app).delete(`/jobs/${b.body.job_id}`).set(auth).expect(409);
    await request(q.app)
      .post('/jobs/claim')
      .set(auth)
      .send({ worker_id: 'w', task_types: ['t'] })
      .expect(204);
  });

  it('serves remote workers: a worker on "another host" runs archive.zip over HTTP', async () => {
    const file = path.join(tmp.dir, 'params.json');
    writeFileSync(file, JSON.stringify({ nshots: 1024 }));
    const job = await request(q.app)
      .post('/jobs')
      .set(auth)
      .field('task_type', 'archive.zip')
      .attach('file', file)
      .expect(201);
    const pool = new WorkerPool({
      source: new HttpJobSource(q.url, 'jobs-token', 5000),
      handlers: builtInHandlers(),
      taskTypes: ['archive.zip'],
      pollIntervalMs: 20,
      logger: silentLogger(),
    });
    pool.start();
    await waitFor(async () => (await q.repo.get(job.body.job_id))?.status === 'completed', 10_000);
    await pool.stop();
    const done = (await q.repo.get(job.body.job_id))!;
    expect(done.output).toMatchObject({ archive: 'output/archive.zip', files: 1 });
    const zip = await request(q.app)
      .get(`/jobs/${job.body.job_id}/files/output/archive.zip`)
      .set(auth)
      .buffer(true)
      .parse((res, cb) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => cb(null, Buffer.concat(chunks)));
      })
      .expect(200);
    expect((zip.body as Buffer).subarray(0, 2).toString()).toBe('PK');
    expect(readFileSync(file, 'utf8')).toContain('1024');
  });
});
