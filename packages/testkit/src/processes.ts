import { type ChildProcess, spawn, spawnSync } from 'node:child_process';

/**
 * Starts a service process and resolves with its URL once it logs `"url":"http://…"` (every
 * qlab service does when it listens). `detached` puts it in its own process group, so
 * `killGroup` can take down wrappers such as tsx together with the server.
 */
export function spawnService(
  cmd: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string; detached?: boolean } = {},
): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(cmd, args, {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'inherit'],
    detached: options.detached,
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /"url":"(http:[^"]+)"/.exec(out);
      if (m) resolve({ child, url: m[1]! });
    });
    child.on('exit', (code) =>
      reject(new Error(`${cmd} ${args[0] ?? ''} exited with ${code}: ${out.slice(-500)}`)),
    );
  });
}

/** SIGKILLs a detached child's whole process group and waits for the child to exit. */
export function killGroup(child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    process.kill(-child.pid!, signal);
  });
}

/** Builds a workspace package and what it depends on (turbo; cached builds are instant). */
export function buildPackage(repoRoot: string, name: string): void {
  const r = spawnSync(
    'pnpm',
    ['exec', 'turbo', 'run', 'build', `--filter=${name}`, '--output-logs=errors-only'],
    {
      cwd: repoRoot,
      stdio: 'inherit',
      env: { ...process.env, TURBO_TELEMETRY_DISABLED: '1' },
    },
  );
  if (r.status !== 0) throw new Error(`building ${name} failed`);
}

/**
 * How to run a TypeScript entry point from source: Node itself with tsx's loader, and the
 * workspace's source export condition. Not the tsx CLI: it relays SIGTERM/SIGINT and SIGKILLs
 * the child when the child does not confirm within 30 ms, which a busy machine misses, so a
 * graceful-shutdown test would see exit 143 instead of 0.
 */
export function fromSource(repoRoot: string, entry: string): { cmd: string; args: string[] } {
  const loader = require.resolve('tsx', { paths: [repoRoot] });
  return { cmd: process.execPath, args: ['--conditions=@qlab/source', '--import', loader, entry] };
}
