import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fromSource, killGroup, pgTestUrl, tempDir, waitFor } from '@qlab/testkit';
import { type RunningQueue, startQueue } from './helpers';

const root = path.resolve(__dirname, '..');

function startWorker(
  dbUrl: string,
  log: string,
  id: string,
  mode: string,
  leaseMs = 30_000,
): Promise<ChildProcess> {
  const run = fromSource(root, 'test/fixtures/worker-process.ts');
  const child = spawn(run.cmd, [...run.args, dbUrl, log, id, mode, String(leaseMs)], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'inherit'],
    detached: true,
  });
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) resolve(child);
    });
    child.on('exit', (code) => reject(new Error(`worker ${id} exited ${code}`)));
  });
}

function runs(log: string): { id: string; attempt: number; worker: string }[] {
  if (!existsSync(log)) return [];
  return readFileSync(log, 'utf8')
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [id, attempt, worker] = l.split(' ');
      return { id: id!, attempt: Number(attempt), worker: worker! };
    });
}

function multiProcessContract(engine: string, pgUrl?: string) {
  describe(`workers in several processes on ${engine}`, () => {
    let q: RunningQueue;
    const tmp = tempDir('qlab-mp-');
    beforeEach(async () => {
      q = await startQueue({ pgUrl });
    });
    afterEach(async () => q.close());
    afterAll(() => tmp.cleanup());

    it('runs 2,000 jobs across 4 processes, each exactly once, none lost', async () => {
      const log = path.join(tmp.dir, `${engine}-runs.log`);
      for (let i = 0; i < 2000; i += 500) {
        await q.repo.add(
          Array.from({ length: 500 }, (_, k) => ({ job_id: `job-${i + k}`, task_type: 'noop' })),
        );
      }
      const workers = await Promise.all([1, 2, 3, 4].map((n) => startWorker(q.dbUrl, log, `w${n}`, 'noop')));
      await waitFor(async () => (await q.repo.stats()).by_status.completed === 2000, 90_000, 200);
      await Promise.all(workers.map((w) => killGroup(w, 'SIGTERM')));
      const all = runs(log);
      expect(all).toHaveLength(2000);
      expect(new Set(all.map((r) => r.id)).size).toBe(2000);
      expect(all.every((r) => r.attempt === 1)).toBe(true);
      const perWorker = new Set(all.map((r) => r.worker));
      expect(perWorker.size).toBeGreaterThan(1);
    }, 120_000);

    it('finishes the job of a worker killed mid-job on another worker after its lease', async () => {
      const log = path.join(tmp.dir, `${engine}-crash.log`);
      await q.repo.add([{ job_id: 'victim', task_type: 'slow' }]);
      const doomed = await startWorker(q.dbUrl, log, 'doomed', 'slow', 1500);
      await waitFor(() => runs(log).length === 1, 20_000);
      await killGroup(doomed, 'SIGKILL');
      const rescuer = await startWorker(q.dbUrl, log, 'rescuer', 'slow', 1500);
      // The lease runs out; the sweeper (the server's job) puts the job back.
      await waitFor(
        async () => {
          await q.repo.requeueExpired();
          return (await q.repo.get('victim'))?.status === 'completed';
        },
        30_000,
        200,
      );
      await killGroup(rescuer, 'SIGTERM');
      const job = (await q.repo.get('victim'))!;
      expect(job).toMatchObject({
        status: 'completed',
        attempt: 2,
        retry_count: 1,
        output: { by: 'rescuer' },
      });
      expect(runs(log).map((r) => `${r.worker}:${r.attempt}`)).toEqual(['doomed:1', 'rescuer:2']);
    }, 60_000);
  });
}

multiProcessContract('SQLite');
const pgUrl = pgTestUrl('job-worker processes');
(pgUrl ? describe : describe.skip)('PostgreSQL', () => {
  multiProcessContract('PostgreSQL', pgUrl);
});
