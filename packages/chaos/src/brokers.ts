import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { closedPort } from '@qlab/testkit';

const asRoot = process.getuid?.() === 0;

function pgBin(name: string): string {
  const base = '/usr/lib/postgresql';
  const versions = existsSync(base) ? readdirSync(base).sort((a, b) => Number(b) - Number(a)) : [];
  for (const v of versions) {
    const p = path.join(base, v, 'bin', name);
    if (existsSync(p)) return p;
  }
  return name;
}

const run = promisify(execFile);

/**
 * Runs a PostgreSQL program as the postgres user when we are root (initdb refuses root).
 * Asynchronously: the links, the clients and the subscriber live in this process, and a
 * blocked event loop would freeze them for the length of a restart.
 */
async function pgRun(args: string[]): Promise<void> {
  const [bin, ...rest] = args;
  const cmd = asRoot ? 'runuser' : pgBin(bin!);
  const argv = asRoot ? ['-u', 'postgres', '--', pgBin(bin!), ...rest] : rest;
  await run(cmd, argv, { timeout: 120_000 });
}

/** A PostgreSQL of our own: initdb into a temp dir, its own port, trust on loopback. */
export class PrivatePostgres {
  private constructor(
    readonly dir: string,
    readonly port: number,
  ) {}

  static async start(root: string): Promise<PrivatePostgres> {
    const dir = path.join(root, 'pg');
    mkdirSync(dir, { recursive: true });
    if (asRoot) {
      const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
      const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
      chownSync(root, uid, gid);
      chownSync(dir, uid, gid);
    }
    await pgRun(['initdb', '-D', path.join(dir, 'data'), '-U', 'postgres', '-A', 'trust', '--no-sync']);
    const pg = new PrivatePostgres(dir, await closedPort());
    await pg.startServer();
    return pg;
  }

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  startServer(): void {
    const opts = `-p ${this.port} -c listen_addresses=127.0.0.1 -k ${this.dir} -c max_connections=200`;
    pgRun([
      'pg_ctl',
      '-D',
      path.join(this.dir, 'data'),
      '-l',
      path.join(this.dir, 'log'),
      '-o',
      opts,
      '-w',
      'start',
    ]);
  }

  /** `fast` rolls back open transactions and closes connections; `immediate` is a crash (recovery at start). */
  async restart(mode: 'fast' | 'immediate'): Promise<void> {
    await pgRun(['pg_ctl', '-D', path.join(this.dir, 'data'), '-m', mode, '-w', 'stop']);
    // Down for a moment, as a real restart is: clients see the refusals.
    await new Promise((r) => setTimeout(r, 1000));
    await this.startServer();
  }

  async stop(): Promise<void> {
    await pgRun(['pg_ctl', '-D', path.join(this.dir, 'data'), '-m', 'immediate', '-w', 'stop']).catch(
      () => undefined, // already down
    );
  }
}

/**
 * A Mosquitto of our own, on infra/mosquitto's settings (persistence, queue limits) with its
 * listener on a free loopback port and its persistence file in our temp dir.
 */
export class PrivateMosquitto {
  private child?: ChildProcess;
  private constructor(
    private readonly conf: string,
    readonly port: number,
  ) {}

  static async start(root: string, repoRoot: string): Promise<PrivateMosquitto> {
    const dir = path.join(root, 'mosquitto');
    mkdirSync(dir, { recursive: true });
    if (asRoot) {
      const uid = Number(execFileSync('id', ['-u', 'mosquitto']).toString().trim());
      chownSync(dir, uid, uid);
    }
    const port = await closedPort();
    const base = readFileSync(path.join(repoRoot, 'infra/mosquitto/mosquitto.conf'), 'utf8')
      .replace(/^listener .*$/m, `listener ${port} 127.0.0.1`)
      .replace(/^persistence_location .*$/m, `persistence_location ${dir}/`)
      .replace(/^log_dest .*$/m, `log_dest file ${dir}/mosquitto.log`);
    const conf = path.join(dir, 'mosquitto.conf');
    writeFileSync(conf, base);
    const m = new PrivateMosquitto(conf, port);
    await m.startBroker();
    return m;
  }

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  async startBroker(): Promise<void> {
    this.child = spawn('mosquitto', ['-c', this.conf], { stdio: 'ignore' });
    const until = Date.now() + 10_000;
    while (Date.now() < until) {
      if (await portOpen(this.port)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error('mosquitto did not start');
  }

  /** SIGKILL: no goodbye, no final save of its persistence file. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
  }

  async stop(): Promise<void> {
    await this.kill();
  }
}

async function portOpen(port: number): Promise<boolean> {
  const { createConnection } = await import('node:net');
  return new Promise((resolve) => {
    const s = createConnection(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
