import { readdirSync } from 'node:fs';
import request from 'supertest';
import { type RunningQueue, startQueue } from './helpers';

describe('built-in task types (GET /jobs/task-types, params checked at creation)', () => {
  let q: RunningQueue;
  const auth = { Authorization: 'Bearer jobs-token' };
  beforeAll(async () => {
    q = await startQueue({ apiToken: 'jobs-token' });
  });
  afterAll(() => q.close());

  it('lists every built-in task with its params as JSON Schema', async () => {
    const res = await request(q.app).get('/jobs/task-types').set(auth).expect(200);
    const byType = Object.fromEntries(res.body.items.map((t: { task_type: string }) => [t.task_type, t]));
    expect(Object.keys(byType).sort()).toEqual(['archive.zip', 'calibration.publish', 'checksum.sha256']);
    expect(byType['calibration.publish']).toMatchObject({
      inputs: 'optional',
      params: {
        $schema: 'https://json-schema.org/draft/2020-12/schema',
        type: 'object',
        required: ['hashID', 'name'],
        properties: { hashID: { type: 'string', minLength: 1 }, notes: { type: 'string' } },
      },
    });
    expect(byType['archive.zip'].params.properties.name.pattern).toBeDefined();
    await request(q.app).get('/jobs/task-types').expect(401);
  });

  it("refuses a built-in task's job whose params break its schema, and takes any params for other types", async () => {
    const bad = [
      { task_type: 'calibration.publish', params: {} },
      { task_type: 'calibration.publish', params: { hashID: '', name: 'n' } },
      { task_type: 'calibration.publish', params: { hashID: 'h', name: 7 } },
      { task_type: 'archive.zip', params: { name: '../../etc/passwd' } },
    ];
    for (const job of bad) {
      const res = await request(q.app).post('/jobs').set(auth).send(job).expect(400);
      expect(res.body.detail).toMatch(new RegExp(`params of ${job.task_type.replace('.', '\\.')}`));
    }
    // In a batch, one bad job refuses the batch: nothing is added.
    await request(q.app)
      .post('/jobs/batch')
      .set(auth)
      .send({ jobs: [{ task_type: 'checksum.sha256' }, bad[0]] })
      .expect(400);
    expect((await q.repo.list({ limit: 10, offset: 0 })).total).toBe(0);
    await request(q.app)
      .post('/jobs')
      .set(auth)
      .send({ task_type: 'calibration.publish', params: { hashID: 'h', name: 'n', extra: 1 } })
      .expect(201);
    await request(q.app)
      .post('/jobs')
      .set(auth)
      .send({ task_type: 'lab.custom', params: { a: 1 } })
      .expect(201);
  });

  it('checks params of a multipart creation too, and keeps none of its files', async () => {
    const res = await request(q.app)
      .post('/jobs')
      .set(auth)
      .field('task_type', 'archive.zip')
      .field('params', JSON.stringify({ name: 'no-suffix' }))
      .attach('file', Buffer.from('x'), 'a.txt')
      .expect(400);
    expect(res.body.detail).toMatch(/params of archive\.zip/);
    const kept = readdirSync(q.dir, { recursive: true }).map(String);
    expect(kept.filter((f) => f.endsWith('a.txt'))).toEqual([]);
  });
});
