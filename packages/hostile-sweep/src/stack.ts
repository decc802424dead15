import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { type EmbeddedBroker, startEmbeddedBroker } from '@qlab/events';
import { peerEnvPrefix, STACK_SERVICES, type StackService, serviceCommand } from '@qlab/stack/src/services';
import { closedPort } from '@qlab/testkit';

export type ServiceName =
  | 'calibration-store'
  | 'chunked-upload'
  | 'job-worker'
  | 'quantum-tracker'
  | 'analytics-test'
  | 'analytics-generator'
  | 'analytics-benchmark'
  | 'gateway';

export const ANALYTICS_DOMAINS = ['test', 'generator', 'benchmark'] as const;
export type AnalyticsDomain = (typeof ANALYTICS_DOMAINS)[number];

/** Fixed secrets, so a printed reproduction works as it is against the same settings. */
export const TOKENS = {
  'calibration-store': 'hostile-store-token-0123456789',
  'chunked-upload': 'hostile-upload-token-0123456789',
  'job-worker': 'hostile-jobs-token-0123456789',
  'quantum-tracker': 'hostile-tracker-token-0123456789',
  analytics: 'hostile-analytics-token-0123456789',
} as const;

export type KeyName = 'read' | 'write' | 'admin';
export const KEYS: Record<KeyName, string> = {
  read: 'hostile-read-key-0123456789',
  write: 'hostile-write-key-0123456789',
  admin: 'hostile-admin-key-0123456789',
};

/** Small limits, so that oversize cases cost little. */
export const LIMITS = {
  storeUploadBytes: 65_536,
  uploadBytes: 1_048_576,
  jobFileBytes: 65_536,
  analyticsBulkBytes: 65_536,
};

/** The service's own token, as its clients (and the gateway) send it; undefined for the gateway. */
export function serviceToken(name: ServiceName): string | undefined {
  if (name === 'gateway') return undefined;
  if (name.startsWith('analytics-')) return TOKENS.analytics;
  return TOKENS[name as keyof typeof TOKENS];
}

/** Variables of the caller that would change what the services do (providers, URLs, limits). */
const FOREIGN_ENV =
  /^(IBM_|IONQ_|QIBO_|UPLOAD_|JOBS_|TRACKER_|ANALYTICS_|GATEWAY_|WORKER_|MQTT_|CALIBRATION_STORE_|CHUNKED_UPLOAD_|QUANTUM_TRACKER_|JOB_WORKER_|LOG_LEVEL$|DATA_DIR$|PORT$|HOST$|NODE_OPTIONS$|DATABASE_URL$|STORE_DATABASE_URL$|CL_SERVER_DIR$|MEDIA_STORAGE_DIR$|COMPUTE_STORAGE_DIR$|BROADCAST_TYPE$|API_HOST$|API_PORT$|DEBUG$)/;

export interface LogLine {
  at: number;
  text: string;
}

export interface ServiceProcess {
  name: ServiceName;
  port: number;
  url: string;
  /** The service's own folder under the data dir. */
  dataDir: string;
  child: ChildProcess;
  /** Bumped on every (re)start, so a runner can tell that a process died under it. */
  generation: number;
  exits: { at: number; code: number | null; signal: string | null }[];
  log: LogLine[];
}

function serviceFolder(dataDir: string, name: ServiceName): string {
  if (name.startsWith('analytics-')) return path.join(dataDir, 'analytics');
  return path.join(dataDir, name);
}

/** A service's port answered by another process: the stack boots again on new ports. */
class PortTaken extends Error {}

async function waitHealthy(p: ServiceProcess, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  const child = p.child;
  while (Date.now() < until) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`${p.name} exited before it was healthy:\n${tail(p)}`);
    let answered: string | undefined;
    try {
      const res = await fetch(`${p.url}/health`, { signal: AbortSignal.timeout(2000) });
      answered = res.ok ? ((await res.json()) as { service?: string }).service : undefined;
    } catch {
      // not listening yet
    }
    if (answered === p.name) return;
    // The port was free when chosen; a parallel test's server took it before this one bound.
    if (answered !== undefined) throw new PortTaken(`${p.name}'s port ${p.port} is answered by ${answered}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${p.name} not healthy after ${timeoutMs} ms:\n${tail(p)}`);
}

function tail(p: ServiceProcess, lines = 30): string {
  return p.log
    .slice(-lines)
    .map((l) => `  ${l.text}`)
    .join('\n');
}

/**
 * The real stack from TypeScript source, the way infra/stack starts it (same commands, same
 * per-service environment), but in a temp dir, on free ports, with every token required, and
 * with one more power the launcher lacks: a service that dies is started again on its port, so
 * one crash does not turn every later input into a refused connection.
 */
export class HostileStack {
  readonly services = new Map<ServiceName, ServiceProcess>();
  private broker?: EmbeddedBroker;
  private stopping = false;
  private readonly commands = new Map<ServiceName, { cmd: string; args: string[]; env: NodeJS.ProcessEnv }>();
  /** Last resort when the test process exits without stop() (a jest timeout, Ctrl-C). */
  private readonly killAll = () => {
    for (const p of this.services.values()) killGroup(p.child, 'SIGKILL');
    rmSync(this.tempRoot, { recursive: true, force: true });
  };

  private constructor(
    readonly repoRoot: string,
    /** Everything the sweep writes lives here; removed by stop(). */
    readonly tempRoot: string,
    readonly dataDir: string,
  ) {}

  static async start(repoRoot: string, attempt = 1): Promise<HostileStack> {
    const tempRoot = mkdtempSync(path.join(tmpdir(), 'qlab-hostile-'));
    const dataDir = path.join(tempRoot, 'data');
    mkdirSync(dataDir, { recursive: true });
    const stack = new HostileStack(repoRoot, tempRoot, dataDir);
    process.once('exit', stack.killAll);
    try {
      await stack.boot();
    } catch (err) {
      await stack.stop();
      if (err instanceof PortTaken && attempt < 3) return HostileStack.start(repoRoot, attempt + 1);
      throw err;
    }
    return stack;
  }

  private async boot(): Promise<void> {
    // Never 1883: a system broker may own it, and the sweep must not publish into it.
    this.broker = await startEmbeddedBroker({ port: 0 });
    const ports = new Map<ServiceName, number>();
    for (const s of STACK_SERVICES) ports.set(s.name as ServiceName, await closedPort());
    const peers: Record<string, string> = {};
    const tokens: Record<string, string> = {};
    for (const name of STACK_SERVICES.map((s) => s.name as ServiceName).filter((n) => n !== 'gateway')) {
      const prefix = peerEnvPrefix(name);
      peers[`${prefix}_URL`] = `http://127.0.0.1:${ports.get(name)}`;
      tokens[`${prefix}_TOKEN`] = serviceToken(name)!;
    }
    const base: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!FOREIGN_ENV.test(k)) base[k] = v;
    const shared: NodeJS.ProcessEnv = {
      ...base,
      ...peers,
      // Production-like: every service requires its token; the gateway presents each one.
      ...tokens,
      QIBO_API_TOKEN: TOKENS['calibration-store'],
      UPLOAD_API_KEYS: TOKENS['chunked-upload'],
      JOBS_API_TOKEN: TOKENS['job-worker'],
      TRACKER_API_TOKEN: TOKENS['quantum-tracker'],
      ANALYTICS_API_TOKEN: TOKENS.analytics,
      GATEWAY_RATE_LIMIT: '0',
      GATEWAY_API_KEYS: `${KEYS.read}:read,${KEYS.write}:read+write,${KEYS.admin}:read+write+admin`,
      QIBO_MAX_UPLOAD_BYTES: String(LIMITS.storeUploadBytes),
      UPLOAD_MAX_BYTES: String(LIMITS.uploadBytes),
      // Encrypted uploads on, so their routes are swept too (2048-bit keys: quick to make).
      UPLOAD_ENCRYPTION: 'true',
      UPLOAD_ENCRYPTION_KEY_BITS: '2048',
      JOBS_MAX_FILE_BYTES: String(LIMITS.jobFileBytes),
      ANALYTICS_MAX_BULK_BYTES: String(LIMITS.analyticsBulkBytes),
      // Where --api-token would be remembered: never the real ~/.qibo_server.json.
      QIBO_SERVER_CONFIG: path.join(this.tempRoot, 'qibo-server.json'),
      // Warnings and errors only: per-request info lines would cost CPU the sweep needs.
      LOG_LEVEL: 'warn',
      HOST: '127.0.0.1',
      DATA_DIR: this.dataDir,
      MQTT_URL: this.broker.url,
    };
    for (const s of STACK_SERVICES) {
      const name = s.name as ServiceName;
      const port = ports.get(name)!;
      const { cmd, args } = serviceCommand(this.repoRoot, s as StackService, true);
      this.commands.set(name, { cmd, args, env: { ...shared, ...s.env, PORT: String(port) } });
      this.services.set(name, {
        name,
        port,
        url: `http://127.0.0.1:${port}`,
        dataDir: serviceFolder(this.dataDir, name),
        child: undefined as unknown as ChildProcess,
        generation: 0,
        exits: [],
        log: [],
      });
    }
    // All at once: each tsx start compiles on its own, and they do not need each other to boot.
    await Promise.all([...this.services.keys()].map((name) => this.spawn(name)));
  }

  private async spawn(name: ServiceName): Promise<void> {
    const p = this.services.get(name)!;
    const { cmd, args, env } = this.commands.get(name)!;
    const child = spawn(cmd, args, {
      cwd: this.repoRoot,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    p.child = child;
    p.generation++;
    for (const stream of [child.stdout!, child.stderr!]) {
      createInterface({ input: stream }).on('line', (text) => {
        p.log.push({ at: Date.now(), text });
        if (p.log.length > 400) p.log.splice(0, p.log.length - 400);
      });
    }
    child.on('exit', (code, signal) => {
      if (!this.stopping) p.exits.push({ at: Date.now(), code, signal });
    });
    await waitHealthy(p, 60_000);
  }

  get(name: ServiceName): ServiceProcess {
    return this.services.get(name)!;
  }

  alive(name: ServiceName): boolean {
    const c = this.get(name).child;
    return c.exitCode === null && c.signalCode === null;
  }

  /** Starts a dead (or wedged) service again on its port, with its data. */
  async restart(name: ServiceName): Promise<void> {
    if (this.stopping) throw new Error(`the stack is stopping: ${name} is not started again`);
    const p = this.get(name);
    if (this.alive(name)) await stopGroup(p.child, 2000);
    await this.spawn(name);
  }

  /** Log lines of a service between two instants (for a wrong answer's description). */
  logBetween(name: ServiceName, from: number, to: number): string[] {
    return this.get(name)
      .log.filter((l) => l.at >= from && l.at <= to)
      .map((l) => l.text);
  }

  logTail(name: ServiceName, lines = 20): string {
    return tail(this.get(name), lines);
  }

  /** Stops every process group, the broker, and removes the temp dir; safe to call twice. */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(
      [...this.services.values()].filter((p) => p.child).map((p) => stopGroup(p.child, 5000)),
    );
    // The wrapper exits first; wait for the node process it ran before deleting its files.
    await Promise.all(
      [...this.services.values()].filter((p) => p.child?.pid).map((p) => groupGone(p.child.pid!)),
    );
    await this.broker?.close();
    this.broker = undefined;
    process.off('exit', this.killAll);
    rmSync(this.tempRoot, { recursive: true, force: true });
  }
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (!child?.pid) return;
  try {
    // Detached: the group holds tsx and the node process it runs.
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

async function groupGone(pgid: number, timeoutMs = 5000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    try {
      process.kill(-pgid, 0);
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch {
    // gone meanwhile
  }
}

function stopGroup(child: ChildProcess, graceMs: number): Promise<void> {
  if (!child?.pid || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const hard = setTimeout(() => killGroup(child, 'SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(hard);
      // The wrapper may leave its node child behind: make sure the whole group is gone.
      killGroup(child, 'SIGKILL');
      resolve();
    });
    killGroup(child, 'SIGTERM');
  });
}
