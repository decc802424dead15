import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { peerEnvPrefix, STACK_SERVICES, serviceCommand } from '@qlab/stack/src/services';
import { closedPort } from '@qlab/testkit';
import type { PrivateMosquitto, PrivatePostgres } from './brokers';
import type { FaultyLink } from './links';

const run = promisify(execFile);

/** Fixed secrets: the chaos stack runs as deployed, every token required. */
export const TOKEN = {
  'calibration-store': 'chaos-store-token-0123456789',
  'chunked-upload': 'chaos-upload-token-0123456789',
  'job-worker': 'chaos-jobs-token-0123456789',
  'quantum-tracker': 'chaos-tracker-token-0123456789',
  analytics: 'chaos-analytics-token-0123456789',
};
export const WRITE_KEY = 'chaos-write-key-0123456789';

/** Lease of a job in the chaos run: short, so a stopped worker's lease runs out within a fault. */
export const LEASE_MS = 6000;

const DB_ENV: Record<string, string> = {
  'calibration-store': 'QIBO_DB_URI',
  'chunked-upload': 'UPLOAD_DB_URL',
  'job-worker': 'JOBS_DB_URL',
  'quantum-tracker': 'TRACKER_DB_URL',
};

export interface Proc {
  name: string;
  url: string;
  child?: ChildProcess;
  cmd: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  log: string[];
  /** Lines that say the process died of an error nobody handled (runMain's policy). */
  crashes: string[];
  /** Requests answered 500 (logged as "unhandled error"). */
  internalErrors: string[];
  starts: number;
}

/** Keeps only the settings the chaos run decides; the caller's own would change what runs. */
function cleanEnv(): NodeJS.ProcessEnv {
  const keep = ['PATH', 'HOME', 'LANG', 'TMPDIR', 'TZ', 'NODE_EXTRA_CA_CERTS'];
  return Object.fromEntries(keep.filter((k) => process.env[k] !== undefined).map((k) => [k, process.env[k]]));
}

/**
 * The stack as docker-compose runs it, without Docker: every service a process of its own from
 * its build output, on PostgreSQL (one schema each) and Mosquitto through FaultyLinks, tokens
 * required, the gateway in front, and two remote workers (`qlab worker`) doing the jobs.
 */
export class ChaosStack {
  readonly procs = new Map<string, Proc>();
  private stopping = false;
  /** The workload, once it runs: service faults wait until it has a request under way there. */
  workload?: { busy(service: string, ms?: number): Promise<boolean> };

  constructor(
    readonly repoRoot: string,
    readonly dataDir: string,
    readonly pg: PrivatePostgres,
    readonly mqtt: PrivateMosquitto,
    readonly dbLink: FaultyLink,
    readonly brokerLink: FaultyLink,
  ) {}

  get gatewayUrl(): string {
    return this.procs.get('gateway')!.url;
  }

  async start(): Promise<void> {
    const ports = new Map<string, number>();
    for (const s of STACK_SERVICES) ports.set(s.name, await closedPort());
    const peers: Record<string, string> = {};
    for (const name of STACK_SERVICES.map((s) => s.name).filter((n) => n !== 'gateway')) {
      const prefix = peerEnvPrefix(name);
      peers[`${prefix}_URL`] = `http://127.0.0.1:${ports.get(name)}`;
      peers[`${prefix}_TOKEN`] = name.startsWith('analytics-')
        ? TOKEN.analytics
        : TOKEN[name as keyof typeof TOKEN];
    }
    const shared: NodeJS.ProcessEnv = {
      ...cleanEnv(),
      ...peers,
      NODE_ENV: 'production',
      HOST: '127.0.0.1',
      DATA_DIR: this.dataDir,
      LOG_LEVEL: 'warn',
      MQTT_URL: `mqtt://127.0.0.1:${this.brokerLink.port}`,
      QIBO_API_TOKEN: TOKEN['calibration-store'],
      UPLOAD_GATEWAY_TOKEN: TOKEN['chunked-upload'],
      UPLOAD_PATH_MODE: 'sanitize',
      JOBS_API_TOKEN: TOKEN['job-worker'],
      JOBS_LEASE_MS: String(LEASE_MS),
      // Jobs run on the two remote workers only.
      WORKER_CONCURRENCY: '0',
      TRACKER_API_TOKEN: TOKEN['quantum-tracker'],
      ANALYTICS_API_TOKEN: TOKEN.analytics,
      GATEWAY_API_KEYS: `${WRITE_KEY}:read+write`,
      GATEWAY_RATE_LIMIT: '0',
      QIBO_SERVER_CONFIG: path.join(this.dataDir, 'qibo-server.json'),
    };
    for (const s of STACK_SERVICES) {
      const { cmd, args } = serviceCommand(this.repoRoot, s, false);
      const db = DB_ENV[s.name];
      const schema = s.name.replace(/-/g, '_');
      this.procs.set(s.name, {
        name: s.name,
        url: `http://127.0.0.1:${ports.get(s.name)}`,
        cmd,
        args,
        env: {
          ...shared,
          ...s.env,
          PORT: String(ports.get(s.name)),
          ...(db
            ? { [db]: `postgres://postgres@127.0.0.1:${this.dbLink.port}/postgres?schema=${schema}` }
            : {}),
        },
        log: [],
        crashes: [],
        internalErrors: [],
        starts: 0,
      });
    }
    const worker = path.join(this.repoRoot, 'services/job-worker/dist/worker-main.js');
    for (const id of ['worker-a', 'worker-b'])
      this.procs.set(id, {
        name: id,
        url: '',
        cmd: process.execPath,
        args: [worker],
        env: {
          ...cleanEnv(),
          JOBS_URL: peers.JOB_WORKER_URL,
          JOBS_API_TOKEN: TOKEN['job-worker'],
          JOBS_LEASE_MS: String(LEASE_MS),
          WORKER_ID: id,
          WORKER_CONCURRENCY: '2',
          WORKER_POLL_INTERVAL_MS: '200',
          CALIBRATION_STORE_URL: peers.CALIBRATION_STORE_URL,
          CALIBRATION_STORE_TOKEN: TOKEN['calibration-store'],
          LOG_LEVEL: 'warn',
          DATA_DIR: path.join(this.dataDir, id),
        },
        log: [],
        crashes: [],
        internalErrors: [],
        starts: 0,
      });
    mkdirSync(this.dataDir, { recursive: true });
    await this.mountUploadDisk();
    // Services first (in parallel), then the gateway and the workers, which call them.
    const services = [...this.procs.keys()].filter((n) => n !== 'gateway' && !n.startsWith('worker-'));
    await Promise.all(services.map((n) => this.launch(n)));
    await this.launch('gateway');
    await Promise.all(['worker-a', 'worker-b'].map((n) => this.launch(n)));
  }

  async launch(name: string): Promise<void> {
    const p = this.procs.get(name)!;
    const child = spawn(p.cmd, p.args, {
      cwd: this.repoRoot,
      env: p.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    p.child = child;
    p.starts++;
    for (const stream of [child.stdout!, child.stderr!])
      createInterface({ input: stream }).on('line', (line) => {
        p.log.push(line);
        if (p.log.length > 300) p.log.shift();
        // runMain's last words (kit/run-main.ts): an error nobody handled ended the process.
        if (/: (uncaught exception|unhandled promise rejection), exiting:/.test(line))
          p.crashes.push(line.slice(0, 500));
        // A 500 is a bug the client cannot retry around (a store outage is a 503).
        if (/"msg":"unhandled error"/.test(line)) p.internalErrors.push(line.slice(0, 500));
      });
    child.on('exit', (code, signal) => {
      if (!this.stopping && signal !== 'SIGKILL' && signal !== 'SIGTERM')
        p.crashes.push(`${name} exited by itself: code ${code} signal ${signal}`);
    });
    if (p.url) await this.waitHealthy(p, 60_000);
  }

  private async waitHealthy(p: Proc, timeoutMs: number): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      if (p.child && (p.child.exitCode !== null || p.child.signalCode !== null))
        throw new Error(`${p.name} exited during start:\n${p.log.slice(-20).join('\n')}`);
      try {
        // Ready, not merely listening: /ready checks each service's stores; the gateway's
        // /health says whether every service behind it answers.
        if (p.name === 'gateway') {
          const res = await fetch(`${p.url}/health`, { signal: AbortSignal.timeout(2000) });
          if (res.ok && ((await res.json()) as { all_services_up?: boolean }).all_services_up === true)
            return;
        } else if ((await fetch(`${p.url}/ready`, { signal: AbortSignal.timeout(2000) })).ok) return;
      } catch {
        // not up yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`${p.name} not healthy after ${timeoutMs} ms:\n${p.log.slice(-20).join('\n')}`);
  }

  /** Is the service answering /health (ms to get there, or undefined when it never did)? */
  async healthyWithin(name: string, timeoutMs: number): Promise<number | undefined> {
    const started = Date.now();
    try {
      await this.waitHealthy(this.procs.get(name)!, timeoutMs);
      return Date.now() - started;
    } catch {
      return undefined;
    }
  }

  signal(name: string, signal: NodeJS.Signals): void {
    const child = this.procs.get(name)!.child!;
    if (child.pid !== undefined && child.exitCode === null) process.kill(-child.pid, signal);
  }

  async kill(name: string): Promise<void> {
    const child = this.procs.get(name)!.child!;
    if (child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      this.signal(name, 'SIGKILL');
    });
  }

  /** chunked-upload's folder, on a small disk of its own that a fault can fill (root only). */
  get uploadDisk(): string {
    return path.join(this.dataDir, 'chunked-upload');
  }
  uploadDiskMounted = false;

  private async mountUploadDisk(): Promise<void> {
    if (process.getuid?.() !== 0) return;
    mkdirSync(this.uploadDisk, { recursive: true });
    await run('mount', ['-t', 'tmpfs', '-o', 'size=2g,mode=0700', 'tmpfs', this.uploadDisk]);
    this.uploadDiskMounted = true;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(
      [...this.procs.keys()].map(async (n) => {
        this.signal(n, 'SIGCONT');
        await this.kill(n);
      }),
    );
    if (this.uploadDiskMounted) await run('umount', ['-l', this.uploadDisk]).catch(() => undefined);
  }
}
