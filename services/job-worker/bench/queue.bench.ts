/**
 * Enqueue N no-op jobs, then process them with 2 worker processes: qlab on SQLite and on
 * PostgreSQL, graphile-worker (PostgreSQL, defaults, concurrency 10) and BullMQ (Redis,
 * concurrency 10), in one run. Prints enqueue jobs/s, processed jobs/s (first start to last
 * completion) and claim→complete p50/p99, with ratios.
 *   pnpm --filter job-worker bench     (BENCH_JOBS=20000 BENCH_ROUNDS=3 BENCH_PG_URL=postgres://…
 *                                       BENCH_TARGETS=qlab-sqlite,bullmq)
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openDatabase, parseDbUrl } from '@qlab/kit';
import { pgSchemaUrl, recordBench } from '@qlab/testkit';
import { JobRepository } from '../src/storage/job-repository';
import { migrations } from '../src/storage/migrations';

const N = Number(process.env.BENCH_JOBS ?? 20_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const PG =
  process.env.BENCH_PG_URL ?? process.env.QLAB_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const root = path.resolve(__dirname, '..');
const tsx = path.resolve(root, '../../node_modules/.bin/tsx');
const CHUNK = 1000;

interface WorkerReport {
  first: number;
  last: number;
  processed: number;
  latencies: number[];
}

function startWorker(
  kind: string,
  conn: string,
  id: string,
): { child: ChildProcess; done: Promise<WorkerReport> } {
  const child = spawn(
    tsx,
    ['--conditions=@qlab/source', path.join(__dirname, 'bench-worker.ts'), kind, conn, id],
    {
      cwd: root,
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  let out = '';
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const done = new Promise<WorkerReport>((resolve, reject) =>
    child.on('exit', (code) =>
      code === 0
        ? resolve(JSON.parse(out.trim().split('\n').pop()!))
        : reject(new Error(`${kind} worker exited ${code}`)),
    ),
  );
  return { child, done };
}

async function enqueue(kind: string, conn: string): Promise<number> {
  const t0 = performance.now();
  if (kind.startsWith('qlab')) {
    const knex = await openDatabase({ target: parseDbUrl(conn), migrations });
    const repo = new JobRepository(knex);
    const t = performance.now();
    for (let i = 0; i < N; i += CHUNK)
      await repo.add(Array.from({ length: Math.min(CHUNK, N - i) }, () => ({ task_type: 'noop' })));
    const seconds = (performance.now() - t) / 1000;
    repo.close();
    await knex.destroy();
    return N / seconds;
  }
  if (kind === 'graphile') {
    const { Client } = await import('pg');
    const pg = new Client({ connectionString: conn });
    await pg.connect();
    await pg.query('drop schema if exists graphile_worker cascade');
    await pg.end();
    const { makeWorkerUtils } = await import('graphile-worker');
    const utils = await makeWorkerUtils({ connectionString: conn });
    await utils.migrate();
    const t = performance.now();
    for (let i = 0; i < N; i += CHUNK) {
      await utils.addJobs(
        Array.from({ length: Math.min(CHUNK, N - i) }, () => ({ identifier: 'noop', payload: {} })),
      );
    }
    const seconds = (performance.now() - t) / 1000;
    await utils.release();
    return N / seconds;
  }
  const { Queue } = await import('bullmq');
  const queue = new Queue(conn, { connection: { host: '127.0.0.1', port: 6379 } });
  await queue.obliterate({ force: true });
  const t = performance.now();
  for (let i = 0; i < N; i += CHUNK) {
    await queue.addBulk(
      Array.from({ length: Math.min(CHUNK, N - i) }, () => ({
        name: 'noop',
        data: {},
        opts: { removeOnComplete: true },
      })),
    );
  }
  const seconds = (performance.now() - t) / 1000;
  await queue.close();
  void t0;
  return N / seconds;
}

async function verifyQlab(conn: string): Promise<string> {
  const knex = await openDatabase({ target: parseDbUrl(conn), migrations });
  const rows = await knex('jobs').select('status', 'attempt').count({ n: '*' }).groupBy('status', 'attempt');
  await knex.destroy();
  const first = rows[0] as { status?: string; attempt?: number; n?: number } | undefined;
  const ok =
    rows.length === 1 &&
    first?.status === 'completed' &&
    Number(first?.attempt) === 1 &&
    Number(first?.n) === N;
  return ok ? `all ${N} completed once` : `PROBLEM: ${JSON.stringify(rows)}`;
}

const pct = (xs: number[], p: number) => {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main() {
  const work = mkdtempSync(path.join(tmpdir(), 'qlab-bench-jobs-'));
  // BENCH_TARGETS=qlab-sqlite,bullmq runs only those (profiling one of them, say).
  const targets = (process.env.BENCH_TARGETS ?? 'qlab-sqlite,qlab-pg,graphile,bullmq').split(',');
  const results: Record<
    string,
    { enq: number[]; proc: number[]; p50: number[]; p99: number[]; check: string[] }
  > = {};
  for (const t of targets) results[t] = { enq: [], proc: [], p50: [], p99: [], check: [] };
  const schemas: string[] = [];

  for (let round = 0; round < ROUNDS; round++) {
    for (const kind of round % 2 === 0 ? targets : [...targets].reverse()) {
      let conn: string;
      if (kind === 'qlab-sqlite') conn = path.join(work, `r${round}.db`);
      else if (kind === 'qlab-pg') {
        const s = pgSchemaUrl(PG);
        schemas.push(s.schema);
        conn = s.url;
      } else if (kind === 'graphile') conn = PG;
      else conn = `qlab-bench-${process.pid}-${round}`;
      const enq = await enqueue(kind, conn);
      const workers = [1, 2].map((n) => startWorker(kind, conn, `${kind}-${n}`));
      await new Promise((r) => setTimeout(r, 1500)); // let both processes load and connect
      for (const w of workers) w.child.stdin!.end('go\n');
      const reports = await Promise.all(workers.map((w) => w.done));
      const processed = reports.reduce((s, r) => s + r.processed, 0);
      const first = Math.min(...reports.map((r) => r.first));
      const last = Math.max(...reports.map((r) => r.last));
      const lat = reports.flatMap((r) => r.latencies);
      const r = results[kind]!;
      r.enq.push(enq);
      r.proc.push(processed / ((last - first) / 1000));
      r.p50.push(pct(lat, 50));
      r.p99.push(pct(lat, 99));
      r.check.push(
        kind.startsWith('qlab')
          ? await verifyQlab(conn)
          : processed === N
            ? `processed ${processed}`
            : `PROBLEM: processed ${processed} of ${N}`,
      );
      process.stdout.write(
        `round ${round + 1} ${kind}: enqueue ${enq.toFixed(0)}/s, processed ${r.proc.at(-1)!.toFixed(0)}/s, ${r.check.at(-1)}\n`,
      );
    }
  }
  const { Client } = await import('pg');
  const pg = new Client({ connectionString: PG });
  await pg.connect();
  for (const s of schemas) await pg.query(`drop schema if exists "${s}" cascade`);
  await pg.end();
  rmSync(work, { recursive: true, force: true });

  const m = Object.fromEntries(
    targets.map((t) => [
      t,
      {
        enq: median(results[t]!.enq),
        proc: median(results[t]!.proc),
        p50: median(results[t]!.p50),
        p99: median(results[t]!.p99),
      },
    ]),
  );
  const f = (x: number, d = 0) => (Number.isNaN(x) ? 'n/a' : x.toFixed(d));
  console.log(`\njob-worker queue benchmark: ${N} no-op jobs, 2 worker processes, ${ROUNDS} rounds, medians`);
  console.log('  target                         enqueue/s  processed/s  claim→complete p50 ms  p99 ms');
  const label: Record<string, string> = {
    'qlab-sqlite': 'qlab, SQLite (10/process)',
    'qlab-pg': 'qlab, PostgreSQL (10/process)',
    graphile: 'graphile-worker (10/process)',
    bullmq: 'BullMQ, Redis (10/process)',
  };
  for (const t of targets) {
    const x = m[t]!;
    console.log(
      `  ${label[t]!.padEnd(30)} ${f(x.enq).padStart(9)}  ${f(x.proc).padStart(11)}  ${f(x.p50, 2).padStart(21)}  ${f(x.p99, 2).padStart(6)}   (${results[t]!.proc.map((v) => v.toFixed(0)).join(', ')})`,
    );
  }
  for (const t of targets) console.log(`  ${t}: ${[...new Set(results[t]!.check)].join('; ')}`);
  // Ratios only when every peer ran in this run (BENCH_TARGETS may pick fewer).
  if (!['qlab-sqlite', 'qlab-pg', 'graphile', 'bullmq'].every((t) => targets.includes(t))) return;
  const pgRatio = m['qlab-pg']!.proc / m.graphile!.proc;
  const sqliteRatio = m['qlab-sqlite']!.proc / m.bullmq!.proc;
  console.log(
    `  ratios (processed): qlab-pg/graphile ${pgRatio.toFixed(2)}, qlab-sqlite/bullmq ${sqliteRatio.toFixed(2)}, qlab-pg/bullmq ${(m['qlab-pg']!.proc / m.bullmq!.proc).toFixed(2)}`,
  );
  console.log('  (graphile-worker offers no hook when a completion is committed: its latency is n/a)');
  // For `pnpm bench:report` (issue 19).
  recordBench('job-worker', { 'jobs.pg-vs-graphile': pgRatio, 'jobs.sqlite-vs-bullmq': sqliteRatio });
  console.log(`  target PostgreSQL >= 2x graphile-worker: ${pgRatio >= 2 ? 'met' : 'MISSED'}`);
  console.log(`  target SQLite >= 1x BullMQ: ${sqliteRatio >= 1 ? 'met' : 'MISSED'}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
