/**
 * One worker process of the queue benchmark. Waits for "go" on stdin, then processes no-op jobs
 * until the queue is drained, and prints {first, last, processed, latencies} as JSON.
 *   tsx bench-worker.ts <qlab-sqlite|qlab-pg|graphile|bullmq> <connection> <worker id>
 */
import { Lifecycle, openDatabase, parseDbUrl, silentLogger } from '@qlab/kit';
import type { Job } from '../src/domain/job';
import { JobRepository } from '../src/storage/job-repository';
import { migrations } from '../src/storage/migrations';
import { JobWorkspace } from '../src/storage/workspace';
import { LocalJobSource } from '../src/worker/local-source';
import { WorkerPool } from '../src/worker/pool';

const [kind, conn, workerId] = process.argv.slice(2) as [string, string, string];
const stats = { first: Number.POSITIVE_INFINITY, last: 0, processed: 0, latencies: [] as number[] };
const go = new Promise<void>((resolve) => process.stdin.once('data', () => resolve()));

function report() {
  process.stdout.write(`${JSON.stringify(stats)}\n`);
}

async function qlab() {
  const knex = await openDatabase({
    target: parseDbUrl(conn),
    migrations,
    pgPoolMax: 10,
    sqliteBusyTimeoutMs: 0,
  });
  const repo = new JobRepository(knex);
  const claimedAt = new Map<string, number>();
  // Times each job from the claim's answer to the completion's commit (the product's own path).
  class TimedSource extends LocalJobSource {
    override async claim(w: string, types: string[], max: number) {
      const jobs = await super.claim(w, types, max);
      const t = performance.now();
      for (const job of jobs) claimedAt.set(job.job_id, t);
      return jobs;
    }
    override async complete(job: Job, w: string, output: Record<string, unknown>) {
      await super.complete(job, w, output);
      const t = performance.now();
      stats.latencies.push(t - claimedAt.get(job.job_id)!);
      stats.last = Math.max(stats.last, Date.now());
      stats.processed++;
    }
  }
  let idleSince = 0;
  const pool = new WorkerPool({
    source: new TimedSource(repo, new JobWorkspace(`${conn.replace(/[^\w]/g, '_').slice(0, 40)}.ws`), 30_000),
    handlers: {
      noop: async () => {
        stats.first = Math.min(stats.first, Date.now());
        idleSince = 0;
        return {};
      },
    },
    concurrency: 10,
    pollIntervalMs: 5,
    workerId,
    logger: silentLogger(),
  });
  await go;
  pool.start();
  // Done when nothing is queued or running for a moment.
  for (;;) {
    await new Promise((r) => setTimeout(r, 100));
    const s = await repo.stats();
    if (s.by_status.queued === 0 && s.by_status.processing === 0) {
      if (idleSince === 0) idleSince = Date.now();
      else break;
    }
  }
  await pool.stop();
  const life = new Lifecycle();
  life.add('db', async () => {
    repo.close();
    await knex.destroy();
  });
  await life.stop();
}

async function graphile() {
  const { run } = await import('graphile-worker');
  await go;
  const runner = await run({
    connectionString: conn,
    concurrency: 10,
    noHandleSignals: true,
    logger: new (await import('graphile-worker')).Logger(() => () => undefined),
    taskList: {
      noop: async () => {
        const t = Date.now();
        stats.first = Math.min(stats.first, t);
        stats.last = Math.max(stats.last, t);
        stats.processed++;
      },
    },
  });
  const { Client } = await import('pg');
  const pg = new Client({ connectionString: conn });
  await pg.connect();
  for (;;) {
    await new Promise((r) => setTimeout(r, 100));
    const r = await pg.query(
      "select count(*)::int as n from graphile_worker._private_jobs where task_id = (select id from graphile_worker._private_tasks where identifier = 'noop')",
    );
    if (r.rows[0].n === 0) break;
  }
  await pg.end();
  await runner.stop();
}

async function bullmq() {
  const { Worker } = await import('bullmq');
  const started = new Map<string, number>();
  await go;
  const worker = new Worker(
    conn,
    async (job) => {
      const t = Date.now();
      stats.first = Math.min(stats.first, t);
      started.set(job.id!, performance.now());
    },
    { connection: { host: '127.0.0.1', port: 6379 }, concurrency: 10 },
  );
  worker.on('completed', (job) => {
    stats.latencies.push(performance.now() - started.get(job.id!)!);
    stats.last = Math.max(stats.last, Date.now());
    stats.processed++;
  });
  const { Queue } = await import('bullmq');
  const queue = new Queue(conn, { connection: { host: '127.0.0.1', port: 6379 } });
  for (;;) {
    await new Promise((r) => setTimeout(r, 100));
    const c = await queue.getJobCounts('wait', 'active', 'prioritized', 'delayed');
    if (Object.values(c).reduce((sum, v) => sum + (v ?? 0), 0) === 0) break;
  }
  await worker.close();
  await queue.close();
}

const runners: Record<string, () => Promise<void>> = {
  'qlab-sqlite': qlab,
  'qlab-pg': qlab,
  graphile,
  bullmq,
};
runners[kind]!().then(
  () => {
    report();
    process.exit(0);
  },
  (err) => {
    process.stderr.write(`${err.stack}\n`);
    process.exit(1);
  },
);
