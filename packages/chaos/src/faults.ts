import { execFile } from 'node:child_process';
import { rm, statfs } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Rng } from './rng';
import { type ChaosStack, LEASE_MS, TOKEN } from './stack';

export interface FaultRecord {
  kind: string;
  target: string;
  start: number;
  end: number;
  /** ms from the end of the fault until every service was ready again. */
  recoveryMs?: number;
  /** Why the fault could not be injected. */
  error?: string;
  /** The job a worker fault struck (it must show the lease that ran out, and complete once). */
  hitJob?: string;
  /** A service fault that struck while a request to it was under way. */
  midRequest?: boolean;
}

const SERVICES = [
  'calibration-store',
  'chunked-upload',
  'job-worker',
  'quantum-tracker',
  'analytics-test',
  'analytics-generator',
  'analytics-benchmark',
  'gateway',
];
const WORKERS = ['worker-a', 'worker-b'];

export interface Fault {
  kind: string;
  target: string;
  /** Resolves with the job it struck, when it was aimed at one. */
  run(stack: ChaosStack): Promise<unknown>;
}

/**
 * Waits (up to 15 s) until `worker` holds a job, so its fault strikes a job under way rather
 * than an idle process; the job's id, or undefined when none came.
 */
async function jobHeldBy(stack: ChaosStack, worker: string): Promise<string | undefined> {
  const jobs = stack.procs.get('job-worker')!;
  const until = Date.now() + 15_000;
  while (Date.now() < until) {
    const res = await fetch(`${jobs.url}/jobs?status=processing&limit=100`, {
      headers: { Authorization: `Bearer ${TOKEN['job-worker']}` },
      signal: AbortSignal.timeout(2000),
    }).catch(() => undefined);
    if (res?.ok) {
      const held = (
        (await res.json()) as { items: { job_id: string; worker_id: string | null }[] }
      ).items.find((j) => j.worker_id === worker);
      if (held) return held.job_id;
    } else await res?.body?.cancel();
    await sleep(20);
  }
  return undefined;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const run = promisify(execFile);

/** SIGKILL mid-request, then started again at once, as a supervisor would. */
const killService = (target: string): Fault => ({
  kind: 'SIGKILL a service',
  target,
  async run(stack) {
    // Aimed: struck while the workload has a request under way there (or after 10 s anyway).
    const midRequest = (await stack.workload?.busy(target)) ?? false;
    await stack.kill(target);
    await stack.launch(target);
    return midRequest ? 'mid-request' : undefined;
  },
});

/** Every kind of fault the suite knows, each with what it hits. */
function catalogue(rng: Rng, quick: boolean): Fault[] {
  /** One fault per worker (one at random in --quick), aimed: it waits until the worker holds a job. */
  const workerFaults = (
    kind: string,
    strike: (stack: ChaosStack, worker: string) => Promise<void>,
  ): Fault[] =>
    (quick ? rng.shuffle(WORKERS).slice(0, 1) : WORKERS).map((w) => ({
      kind,
      target: w,
      async run(stack: ChaosStack) {
        const hit = await jobHeldBy(stack, w);
        await strike(stack, w);
        return hit;
      },
    }));
  const killed = quick ? rng.shuffle(SERVICES).slice(0, 3) : SERVICES;
  return [
    ...killed.map(killService),
    ...workerFaults('SIGKILL a worker', async (stack, w) => {
      await stack.kill(w);
      await sleep(1000);
      await stack.launch(w);
    }),
    ...workerFaults('worker paused past its lease', async (stack, w) => {
      stack.signal(w, 'SIGSTOP');
      await sleep(LEASE_MS * 2);
      stack.signal(w, 'SIGCONT');
    }),
    {
      kind: 'Mosquitto SIGKILL and restart',
      target: 'mosquitto',
      async run(stack) {
        await stack.mqtt.kill();
        await sleep(3000);
        await stack.mqtt.startBroker();
      },
    },
    {
      kind: 'PostgreSQL restart (fast)',
      target: 'postgres',
      async run(stack) {
        await stack.pg.restart('fast');
      },
    },
    {
      kind: 'PostgreSQL restart (immediate)',
      target: 'postgres',
      async run(stack) {
        await stack.pg.restart('immediate');
      },
    },
    {
      kind: 'database link cut 10 s',
      target: 'postgres link',
      async run(stack) {
        await stack.dbLink.cut();
        await sleep(10_000);
        await stack.dbLink.restore();
      },
    },
    {
      kind: 'broker link cut 10 s',
      target: 'mosquitto link',
      async run(stack) {
        await stack.brokerLink.cut();
        await sleep(10_000);
        await stack.brokerLink.restore();
      },
    },
    {
      kind: 'upload disk full for 10 s',
      target: 'chunked-upload disk',
      async run(stack) {
        if (!stack.uploadDiskMounted) return; // not root: reported as skipped by the table
        // Everything but a few KiB taken, as a full disk is; given back after 10 s. Uploads keep
        // writing meanwhile, so the free space is read again until a ballast fits.
        const ballast = path.join(stack.uploadDisk, 'ballast');
        try {
          for (let i = 0, margin = 16 * 1024; i < 8; i++, margin *= 4) {
            const { bavail, bsize } = await statfs(stack.uploadDisk);
            const size = bavail * bsize - margin;
            if (size <= 0) break;
            const ok = await run('fallocate', ['-l', String(size), `${ballast}-${i}`]).then(
              () => true,
              () => false,
            );
            if (ok) break;
          }
          await sleep(10_000);
        } finally {
          for (let i = 0; i < 8; i++) await rm(`${ballast}-${i}`, { force: true });
        }
      },
    },
    {
      kind: '200 ms latency on the database link, 10 s',
      target: 'postgres link',
      async run(stack) {
        stack.dbLink.setLatency(200);
        await sleep(10_000);
        stack.dbLink.setLatency(0);
      },
    },
  ];
}

/**
 * The schedule: every kind at least once, in a seeded order; the full run repeats the
 * catalogue (in new orders) until its time is up. Between faults the stack gets `gapMs`.
 */
export function schedule(rng: Rng, quick: boolean, durationMs: number): Fault[] {
  const faults = rng.shuffle(catalogue(rng, quick));
  if (quick) return faults;
  // Roughly 12 s per fault with its gap: enough rounds to fill the time.
  const rounds = Math.max(1, Math.floor(durationMs / (faults.length * 12_000)));
  for (let i = 1; i < rounds; i++) faults.push(...rng.shuffle(catalogue(rng, quick)));
  return faults;
}

export async function runFaults(
  stack: ChaosStack,
  faults: Fault[],
  gapMs: number,
  log: (line: string) => void,
): Promise<FaultRecord[]> {
  const records: FaultRecord[] = [];
  for (const f of faults) {
    await sleep(gapMs);
    const start = Date.now();
    log(`fault: ${f.kind} (${f.target})`);
    // A fault that could not be injected is the suite's failure, reported, not a crash of the run.
    let hit: string | undefined;
    const error = await f.run(stack).then(
      (struck) => {
        hit = typeof struck === 'string' ? struck : undefined;
      },
      (err: Error) => err.message.slice(0, 300),
    );
    const end = Date.now();
    const record: FaultRecord = {
      kind: f.kind,
      target: f.target,
      start,
      end,
      ...(error ? { error } : {}),
      ...(hit && hit !== 'mid-request' ? { hitJob: hit } : {}),
      ...(hit === 'mid-request' ? { midRequest: true } : {}),
    };
    if (hit) log(hit === 'mid-request' ? '  it struck a request under way' : `  it struck job ${hit}`);
    if (error) log(`fault ${f.kind} could not be injected: ${error}`);
    const recovered = await Promise.all(SERVICES.map((s) => stack.healthyWithin(s, 30_000)));
    if (recovered.every((r) => r !== undefined)) record.recoveryMs = Date.now() - end;
    records.push(record);
  }
  return records;
}

export const ALL_SERVICES = SERVICES;
export const ALL_WORKERS = WORKERS;
