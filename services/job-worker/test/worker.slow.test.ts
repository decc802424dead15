import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { silentLogger } from '@qlab/kit';
import { waitFor } from '@qlab/testkit';
import { type RunningStore, startStore } from '../../calibration-store/test/helpers';
import { builtInHandlers } from '../src/worker/handlers';
import { LocalJobSource } from '../src/worker/local-source';
import { WorkerPool } from '../src/worker/pool';
import type { Handler } from '../src/worker/types';
import { type RunningQueue, startQueue } from './helpers';

describe('worker pool', () => {
  let q: RunningQueue;
  let pool: WorkerPool | undefined;
  beforeEach(async () => {
    q = await startQueue();
  });
  afterEach(async () => {
    await pool?.stop();
    pool = undefined;
    await q.close();
  });

  const startPool = (handlers: Record<string, Handler>, leaseMs = 5000) => {
    pool = new WorkerPool({
      source: new LocalJobSource(q.repo, q.workspace, leaseMs),
      handlers,
      concurrency: 2,
      pollIntervalMs: 10,
      logger: silentLogger(),
    });
    pool.start();
    return pool;
  };
  const finished = (id: string) =>
    waitFor(
      async () => ['completed', 'error', 'cancelled'].includes((await q.repo.get(id))?.status ?? ''),
      10_000,
    );

  it('hashes inputs (checksum.sha256) and zips them (archive.zip) with real files', async () => {
    const [sum, zip] = await q.repo.add([
      { task_type: 'checksum.sha256' },
      { task_type: 'archive.zip', params: { name: 'run.zip' } },
    ]);
    for (const j of [sum!, zip!]) {
      await q.workspace.create(j.job_id);
      await q.workspace.save(j.job_id, 'input/a.txt', Buffer.from('alpha'));
      await q.workspace.save(j.job_id, 'input/sub/b.txt', Buffer.from('beta'));
    }
    startPool(builtInHandlers());
    await finished(sum!.job_id);
    await finished(zip!.job_id);
    const s = (await q.repo.get(sum!.job_id))!;
    expect(s.output).toEqual({
      files: [
        { path: 'input/a.txt', size: 5, sha256: createHash('sha256').update('alpha').digest('hex') },
        { path: 'input/sub/b.txt', size: 4, sha256: createHash('sha256').update('beta').digest('hex') },
      ],
    });
    const z = (await q.repo.get(zip!.job_id))!;
    expect(z).toMatchObject({
      status: 'completed',
      progress: 100,
      output: { archive: 'output/run.zip', files: 2 },
    });
    expect((await q.workspace.list(zip!.job_id)).map((f) => f.path)).toContain('output/run.zip');
  });

  it("publishes a job's outputs to the calibration store as a result", async () => {
    const store: RunningStore = await startStore({ apiToken: 'cal' });
    try {
      const [job] = await q.repo.add([
        {
          task_type: 'calibration.publish',
          params: { hashID: 'abc123', name: 'daily-check', notes: 'from a job' },
        },
      ]);
      await q.workspace.create(job!.job_id);
      await q.workspace.save(job!.job_id, 'output/report.json', Buffer.from('{"fidelity":0.99}'));
      startPool(builtInHandlers({ calibrationStore: { url: store.url, token: 'cal' } }));
      await finished(job!.job_id);
      const done = (await q.repo.get(job!.job_id))!;
      expect(done.status).toBe('completed');
      expect(done.output).toMatchObject({ result_id: 1 });
      const list = await fetch(`${store.url}/results/list?name=daily-check`, {
        headers: { Authorization: 'Bearer cal' },
      });
      expect(((await list.json()) as { items: { notes: string; hashID: string }[] }).items[0]).toMatchObject({
        hashID: 'abc123',
        notes: 'from a job',
      });
    } finally {
      await store.close();
    }
  });

  it('retries a failing handler, then records the error', async () => {
    const [job] = await q.repo.add([{ task_type: 'flaky', max_retries: 1 }]);
    let calls = 0;
    startPool({
      flaky: async () => {
        calls++;
        throw new Error(`flaky ${calls}`);
      },
    });
    // First retry waits 1 s of backoff.
    await waitFor(async () => (await q.repo.get(job!.job_id))?.status === 'error', 10_000);
    const j = (await q.repo.get(job!.job_id))!;
    expect(calls).toBe(2);
    expect(j.errors.map((e) => e.message)).toEqual(['flaky 1', 'flaky 2']);
  });

  it('stops a running job that is cancelled', async () => {
    const [job] = await q.repo.add([{ task_type: 'long' }]);
    let started = false;
    startPool(
      {
        long: ({ signal }) =>
          new Promise((_resolve, reject) => {
            started = true;
            signal.addEventListener('abort', () => reject(signal.reason));
          }),
      },
      1000,
    );
    await waitFor(() => started);
    await q.repo.cancel(job!.job_id);
    await finished(job!.job_id);
    expect((await q.repo.get(job!.job_id))?.status).toBe('cancelled');
  });

  it('drains: stop() waits for running jobs to finish', async () => {
    const [job] = await q.repo.add([{ task_type: 'slowish' }]);
    let started = false;
    const p = startPool({
      slowish: async () => {
        started = true;
        await new Promise((r) => setTimeout(r, 400));
        return { ok: true };
      },
    });
    await waitFor(() => started);
    await p.stop();
    pool = undefined;
    expect((await q.repo.get(job!.job_id))?.status).toBe('completed');
  });

  it('keeps the lease while the outputs are stored, however long that takes', async () => {
    // A blob store uploads outputs in finish(); here it takes three leases.
    const source = new LocalJobSource(q.repo, q.workspace, 1000);
    source.finish = () => new Promise((r) => setTimeout(r, 3000));
    pool = new WorkerPool({
      source,
      handlers: { slow: async () => ({ ok: true }) },
      concurrency: 1,
      pollIntervalMs: 10,
      logger: silentLogger(),
    });
    pool.start();
    // The lease sweep, as the server runs it.
    const sweep = setInterval(
      () => void q.repo.requeueExpired(100, () => undefined).catch(() => undefined),
      100,
    );
    try {
      const [job] = await q.repo.add([{ task_type: 'slow' }]);
      await finished(job!.job_id);
      expect(await q.repo.get(job!.job_id)).toMatchObject({ status: 'completed', attempt: 1 });
    } finally {
      clearInterval(sweep);
    }
  });

  it('refuses handlers it does not have', () => {
    expect(
      () =>
        new WorkerPool({
          source: new LocalJobSource(q.repo, q.workspace, 1000),
          handlers: {},
          taskTypes: ['x'],
          logger: silentLogger(),
        }),
    ).toThrow(/no handler/);
  });
});

describe('job workspace', () => {
  let q: RunningQueue;
  beforeAll(async () => {
    q = await startQueue();
  });
  afterAll(async () => q.close());

  it('saves bytes, paths and streams with their SHA-256, and never leaves the job folder', async () => {
    const ws = q.workspace;
    await ws.create('job-1');
    const fromBytes = await ws.save('job-1', 'input/a.bin', Buffer.from('abc'));
    const abc = createHash('sha256').update('abc').digest('hex');
    expect(fromBytes).toEqual({
      relative_path: 'input/a.bin',
      size: 3,
      sha256: abc,
      hash: abc,
    });
    const src = path.join(q.dir, 'src.txt');
    writeFileSync(src, 'from a path');
    expect((await ws.save('job-1', 'input/b.txt', src)).size).toBe(11);
    const { Readable } = await import('node:stream');
    expect(
      (await ws.save('job-1', 'output/c.txt', Readable.from([Buffer.from('st'), Buffer.from('ream')]))).size,
    ).toBe(6);
    expect(await ws.allocate('job-1', 'output/deep/d.png')).toBe(
      path.join(ws.root, 'job-1', 'output/deep/d.png'),
    );
    for (const bad of ['../x', '../../jobs.db', '/etc/passwd', 'input/../../x', 'a\u0000b', 'C:\\x']) {
      expect(() => ws.resolve('job-1', bad)).toThrow();
    }
    for (const badId of ['../x', '', '.hidden', 'a/b']) expect(() => ws.jobDir(badId)).toThrow();
    expect((await ws.list('job-1')).map((f) => f.path)).toEqual([
      'input/a.bin',
      'input/b.txt',
      'output/c.txt',
    ]);
    await ws.remove('job-1');
    expect(await ws.list('job-1')).toEqual([]);
  });
});
