import { spawn } from 'node:child_process';
import path from 'node:path';
import { fromSource, waitFor } from '@qlab/testkit';
import request from 'supertest';
import { type RunningQueue, startQueue } from './helpers';

const root = path.resolve(__dirname, '..');
const worker = fromSource(root, 'src/worker-main.ts');

describe('the remote worker process (qlab worker)', () => {
  let q: RunningQueue;
  beforeAll(async () => {
    q = await startQueue({ apiToken: 'tok' });
  });
  afterAll(async () => q.close());

  it('claims over HTTP, runs jobs, and drains on SIGTERM', async () => {
    const job = await request(q.app)
      .post('/jobs')
      .set('Authorization', 'Bearer tok')
      .send({ task_type: 'checksum.sha256' })
      .expect(201);
    const child = spawn(worker.cmd, worker.args, {
      cwd: root,
      env: {
        ...process.env,
        JOBS_URL: q.url,
        JOBS_API_TOKEN: 'tok',
        WORKER_SUPPORTED_TASKS: 'checksum.sha256',
        WORKER_POLL_INTERVAL_MS: '50',
        LOG_LEVEL: 'silent',
      },
      stdio: 'ignore',
    });
    await waitFor(async () => (await q.repo.get(job.body.job_id))?.status === 'completed', 20_000);
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });

  it('refuses to start without JOBS_URL, naming it', async () => {
    const child = spawn(worker.cmd, worker.args, {
      cwd: root,
      env: { ...process.env, JOBS_URL: '' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
    });
    expect(await new Promise((resolve) => child.on('exit', resolve))).toBe(2);
    expect(err).toContain('JOBS_URL');
  });
});
