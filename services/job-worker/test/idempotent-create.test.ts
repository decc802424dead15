import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from '@qlab/testkit';
import request from 'supertest';
import { type RunningQueue, startQueue } from './helpers';

// A retried POST /jobs whose first answer was lost (a gateway or network fault) must not queue the
// job twice: pnpm chaos caught a calibration.publish job created twice that published twice.
const engines: [string, string | undefined][] = [['SQLite', undefined]];
if (process.env.QLAB_TEST_PG_URL) engines.push(['PostgreSQL', process.env.QLAB_TEST_PG_URL]);
else console.log('idempotent-create: PostgreSQL half skipped, QLAB_TEST_PG_URL is not set');

describe.each(engines)('POST /jobs with an Idempotency-Key (%s)', (_engine, pgUrl) => {
  let q: RunningQueue;
  const tmp = tempDir('qlab-jobs-idem-');
  const auth = { Authorization: 'Bearer jobs-token' };
  beforeEach(async () => {
    q = await startQueue({ apiToken: 'jobs-token', pgUrl });
  });
  afterEach(async () => q.close());
  afterAll(() => tmp.cleanup());

  const total = async () => (await q.repo.list({ limit: 1, offset: 0 })).total;

  it('creates a JSON job once, replays it, and refuses the key for another job', async () => {
    const create = (key: string, body: object = { task_type: 'echo', params: { a: 1 } }) =>
      request(q.app).post('/jobs').set(auth).set('Idempotency-Key', key).send(body);
    const first = await create('k-1').expect(201);
    expect(first.headers['idempotent-replayed']).toBeUndefined();
    const again = await create('"k-1"').expect(201);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.body.job_id).toBe(first.body.job_id);
    const [a, b, c] = await Promise.all([create('k-2'), create('k-2'), create('k-2')]);
    expect([a.status, b.status, c.status]).toEqual([201, 201, 201]);
    expect(new Set([a.body.job_id, b.body.job_id, c.body.job_id]).size).toBe(1);
    expect(await total()).toBe(2);
    // The same key for other fields: 422, nothing added.
    expect((await create('k-1', { task_type: 'echo', params: { a: 2 } })).status).toBe(422);
    expect((await create('k-1', { task_type: 'other' })).status).toBe(422);
    for (const bad of ['', 'x'.repeat(256), 'tab\there', 'ünï']) expect((await create(bad)).status).toBe(400);
    expect(await total()).toBe(2);
    // Without a key, two creates are two jobs.
    await request(q.app).post('/jobs').set(auth).send({ task_type: 'echo' }).expect(201);
    await request(q.app).post('/jobs').set(auth).send({ task_type: 'echo' }).expect(201);
    expect(await total()).toBe(4);
    // A replay of a job deleted since: 409, not a new job.
    await request(q.app).delete(`/jobs/${first.body.job_id}`).set(auth).expect(204);
    expect((await create('k-1')).status).toBe(409);
    expect(await total()).toBe(3);
  });

  it('creates a job with input files once, and keeps no folder for the replay', async () => {
    const file = path.join(tmp.dir, 'input.bin');
    writeFileSync(file, 'the same input');
    const other = path.join(tmp.dir, 'other.bin');
    writeFileSync(other, 'another input');
    const create = (key: string, f = file, name = 'input.bin') =>
      request(q.app)
        .post('/jobs')
        .set(auth)
        .set('Idempotency-Key', key)
        .field('task_type', 'checksum.sha256')
        .field('params', JSON.stringify({ hashID: 'h' }))
        .attach('file', f, { filename: name });
    const first = await create('m-1').expect(201);
    const again = await create('m-1').expect(201);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.body.job_id).toBe(first.body.job_id);
    expect(again.body.input_files).toEqual(first.body.input_files);
    const [a, b] = await Promise.all([create('m-2'), create('m-2')]);
    expect(a.body.job_id).toBe(b.body.job_id);
    expect(await total()).toBe(2);
    // Other bytes under the same key are another request.
    expect((await create('m-1', other, 'input.bin')).status).toBe(422);
    // Only the two jobs' folders exist: the replays' uploads were removed.
    const jobsDir = q.workspace.root;
    expect(readdirSync(jobsDir).sort()).toEqual([first.body.job_id, a.body.job_id].sort());
    expect(existsSync(path.join(jobsDir, first.body.job_id, 'input', 'input.bin'))).toBe(true);
  });

  it('keeps keys per gateway key: another caller with the same key gets its own job', async () => {
    const create = (keyId: string) =>
      request(q.app)
        .post('/jobs')
        .set(auth)
        .set('X-Qlab-Key-Id', keyId)
        .set('Idempotency-Key', 'shared')
        .send({ task_type: 'echo' });
    const ana = await create('ana').expect(201);
    const bo = await create('bo').expect(201);
    expect(bo.body.job_id).not.toBe(ana.body.job_id);
    expect((await create('ana')).body.job_id).toBe(ana.body.job_id);
  });
});
