/**
 * A fake provider (IBM shapes) with BENCH_BACKENDS backends (100) and BENCH_JOBS jobs (100,000):
 * time of the first full sync and of an incremental sync (50 jobs changed), p95 of dashboard,
 * analytics and jobs endpoints under 50 concurrent clients, and WebSocket fan-out latency to
 * 500 clients.
 *   pnpm --filter quantum-tracker bench
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { recordBench } from '@qlab/testkit';
import WebSocket from 'ws';
import { FakeIbm } from '../test/fake-providers';
import { startTracker } from '../test/helpers';

const BACKENDS = Number(process.env.BENCH_BACKENDS ?? 100);
const JOBS = Number(process.env.BENCH_JOBS ?? 100_000);
const CLIENTS = 50;
const run = promisify(execFile);
const WS_CLIENTS = Number(process.env.BENCH_WS_CLIENTS ?? 500);

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};

/**
 * 50 connections, `total` requests, with autocannon in its own process (in this process it
 * would compete with the service for the event loop).
 */
async function load(url: string, total: number): Promise<{ p50: number; p95: number; errors: number }> {
  const bin = path.join(__dirname, '../node_modules/.bin/autocannon');
  const { stdout } = await run(bin, ['-j', '-c', String(CLIENTS), '-a', String(total), url], {
    maxBuffer: 1 << 24,
  });
  const r = JSON.parse(stdout) as { latency: { p50: number; p97_5: number }; errors: number; non2xx: number };
  return { p50: r.latency.p50, p95: r.latency.p97_5, errors: r.errors + r.non2xx };
}

async function main() {
  const ibm = await new FakeIbm().start();
  ibm.backends = Array.from({ length: BACKENDS }, (_, i) => ({
    name: `ibm_dev_${i}`,
    status: 'online' as const,
    queue_length: i,
    wait: i * 10,
    is_simulator: i % 10 === 0,
  }));
  const now = Date.now();
  ibm.jobs = Array.from({ length: JOBS }, (_, i) => ({
    id: `job-${i}`,
    backend: `ibm_dev_${i % BACKENDS}`,
    status: i < 200 ? 'Queued' : i % 17 === 0 ? 'Failed' : 'Completed',
    // the 200 unfinished jobs are the newest; the rest spread over 30 days
    created: new Date(now - (i < 200 ? i * 1000 : 3_600_000 + i * 25_000)).toISOString(),
    qpu_seconds: 3,
    user_id: `user-${i % 40}`,
  }));
  // Start and end times are only in /metrics, as at IBM: the sync reads them TRACKER_DETAILS_PER_SYNC at a time.
  for (const j of ibm.jobs)
    if (j.status !== 'Queued') {
      j.running = new Date(Date.parse(j.created) + 60_000).toISOString();
      j.finished = new Date(Date.parse(j.created) + 90_000).toISOString();
    }
  const t = await startTracker({ ibm });
  const sync = t.tracker.syncs[0]!;
  try {
    console.log(
      `quantum-tracker bench: ${BACKENDS} backends, ${JOBS.toLocaleString()} jobs (fake IBM provider)`,
    );
    let s = performance.now();
    const first = await sync.sync('all');
    const firstMs = performance.now() - s;
    if (!first.ok) throw new Error(first.error);
    for (let i = 0; i < 50; i++) ibm.jobs[i]!.status = 'Completed';
    s = performance.now();
    const inc = await sync.sync('all');
    const incMs = performance.now() - s;
    console.log(`  first full sync   : ${(firstMs / 1000).toFixed(2)} s (${first.jobs_seen} jobs)`);
    // For `pnpm bench:report` (issue 19's target is for 100k jobs).
    if (JOBS === 100_000) recordBench('quantum-tracker', { 'tracker.first-sync-100k': firstMs / 1000 });
    console.log(
      `  incremental sync  : ${incMs.toFixed(0)} ms (${inc.jobs_seen} jobs read, ${inc.jobs_changed} changed)  target < 1000 ms`,
    );

    const endpoints = [
      'dashboard',
      'analytics/job-trends',
      'analytics/backend-comparison',
      'analytics/cost-analysis',
      'jobs?limit=50',
      'jobs?backend=ibm_dev_7&limit=50',
      'queue/summary',
    ];
    console.log(
      `\n  ${CLIENTS} concurrent connections (autocannon in its own process), 2,000 requests per endpoint`,
    );
    let worst = 0;
    for (const e of endpoints) {
      await load(`${t.url}/api/v1/${e}`, 100);
      const l = await load(`${t.url}/api/v1/${e}`, 2000);
      if (l.errors > 0) throw new Error(`${e}: ${l.errors} errors`);
      worst = Math.max(worst, l.p95);
      console.log(
        `  ${e.padEnd(32)} p50 ${String(l.p50).padStart(4)} ms  p97.5 ${String(l.p95).padStart(4)} ms`,
      );
    }
    console.log(`  worst p97.5 (an upper bound of p95) ${worst.toFixed(1)} ms  target p95 < 50 ms`);

    const sockets = await Promise.all(
      Array.from(
        { length: WS_CLIENTS },
        () =>
          new Promise<WebSocket>((resolve, reject) => {
            const ws = new WebSocket(`${t.url.replace('http', 'ws')}/api/v1/ws/jobs`);
            ws.once('message', () => resolve(ws));
            ws.once('error', reject);
          }),
      ),
    );
    const lat: number[] = [];
    for (let round = 0; round < 20; round++) {
      const got = sockets.map(
        (ws) =>
          new Promise<void>((resolve) => {
            ws.once('message', (m) => {
              lat.push(Date.now() - Number(JSON.parse(String(m)).sent));
              resolve();
            });
          }),
      );
      t.tracker.hub.publish('jobs', { type: 'job.status_changed', sent: Date.now() });
      await Promise.all(got);
    }
    console.log(
      `\n  WebSocket fan-out to ${WS_CLIENTS} clients (20 messages): p50 ${pct(lat, 50)} ms  p99 ${pct(lat, 99)} ms  target p99 < 100 ms`,
    );
    for (const ws of sockets) ws.close();
  } finally {
    await t.close();
    await ibm.close();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
