import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { fromSource, tempDir } from '@qlab/testkit';

const root = path.resolve(__dirname, '..');
const main = fromSource(root, 'src/main.ts');

function startMain(
  args: string[],
  env: Record<string, string>,
): { child: ChildProcess; url: Promise<string> } {
  const child = spawn(main.cmd, [...main.args, ...args], {
    cwd: root,
    env: { ...process.env, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const url = new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /"url":"(http:[^"]+)"/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.on('exit', (code) => reject(new Error(`exited ${code}: ${out}`)));
  });
  return { child, url };
}

describe('calibration-store process', () => {
  const tmp = tempDir();
  afterAll(() => tmp.cleanup());

  it('starts from flags, enforces the token, and exits cleanly on SIGTERM', async () => {
    const { child, url } = startMain(['--port', '0', '--api-token', 'tok'], {
      DATA_DIR: tmp.dir,
      QIBO_SERVER_CONFIG: path.join(tmp.dir, 'server.json'),
    });
    const base = await url;
    expect((await fetch(`${base}/health`)).status).toBe(200);
    expect((await fetch(`${base}/calibrations/list`)).status).toBe(401);
    const ok = await fetch(`${base}/calibrations/list`, { headers: { Authorization: 'Bearer tok' } });
    expect(await ok.json()).toMatchObject({ items: [], total: 0 });
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });

  it('exits with status 2 and names the problem on bad configuration', async () => {
    const child = spawn(main.cmd, main.args, {
      cwd: root,
      env: { ...process.env, PORT: 'nope', DATA_DIR: tmp.dir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code).toBe(2);
    expect(err).toContain('PORT');
  });
});
