import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { calibrationsUpload } from '@qlab/client';
import { subscribeEvents } from '@qlab/events';
import { closedPort, fromSource, tempDir, waitFor } from '@qlab/testkit';
import { STACK_SERVICES } from '../src/services';

const root = path.resolve(__dirname, '../../..');

describe('pnpm start (the local stack)', () => {
  const tmp = tempDir('qlab-stack-');
  let child: ChildProcess;
  let output = '';
  afterAll(() => {
    // The stack and its services run in their own process group: take all of it down.
    if (child.exitCode === null) process.kill(-child.pid!, 'SIGKILL');
    tmp.cleanup();
  });

  it('starts the broker and every service, serves them, and stops cleanly on Ctrl-C', async () => {
    const ports: Record<string, string> = {};
    for (const s of STACK_SERVICES) ports[s.portEnv] = String(await closedPort());
    const storePort = ports.CALIBRATION_STORE_PORT;
    const mqttPort = await closedPort();
    const launcher = fromSource(root, 'infra/stack/src/main.ts');
    child = spawn(launcher.cmd, launcher.args, {
      cwd: root,
      env: {
        ...process.env,
        QLAB_STACK_FROM_SOURCE: '1',
        DATA_DIR: tmp.dir,
        ...ports,
        MQTT_PORT: String(mqttPort),
        MQTT_URL: '',
        QIBO_SERVER_CONFIG: path.join(tmp.dir, 'server.json'),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    child.stdout!.on('data', (d: Buffer) => {
      output += d.toString();
    });
    child.stderr!.on('data', (d: Buffer) => {
      output += d.toString();
    });
    await waitFor(() => output.includes('qlab: ready') || child.exitCode !== null, 150_000);
    expect(output).toContain('qlab: ready');
    expect(output).toContain(`http://127.0.0.1:${storePort}`);
    expect(output).toContain(`mqtt://127.0.0.1:${mqttPort}`);
    for (const s of STACK_SERVICES) {
      expect((await fetch(`http://127.0.0.1:${ports[s.portEnv]}/health`)).status).toBe(200);
    }

    const events: string[] = [];
    const sub = await subscribeEvents({
      mqttUrl: `mqtt://127.0.0.1:${mqttPort}`,
      clientId: 'stack-test',
      clean: true,
      topics: ['qlab/#'],
      onEvent: (e) => {
        events.push(e.type);
      },
    });
    const file = path.join(tmp.dir, 'params.json');
    writeFileSync(file, '{}');
    const configFile = path.join(tmp.dir, 'client.json');
    // Secure by default: the direct port wants the token the stack generated and kept.
    const tokenFile = path.join(tmp.dir, 'tokens', 'calibration-store');
    expect(statSync(tokenFile).mode & 0o777).toBe(0o600);
    expect(statSync(path.join(tmp.dir, 'tokens')).mode & 0o777).toBe(0o700);
    expect((await fetch(`http://127.0.0.1:${storePort}/calibrations/list`)).status).toBe(401);
    await calibrationsUpload('stack', 'n', [file], {
      serverUrl: `http://127.0.0.1:${storePort}`,
      apiToken: readFileSync(tokenFile, 'utf8').trim(),
      configFile,
    });
    // Data folders and databases are the service user's alone.
    expect(statSync(path.join(tmp.dir, 'calibration-store')).mode & 0o777).toBe(0o700);
    expect(statSync(path.join(tmp.dir, 'calibration-store', 'qibo.db')).mode & 0o777).toBe(0o600);
    // The admin key is in its file, and not in the output.
    const adminKey = readFileSync(path.join(tmp.dir, 'gateway', 'bootstrap-api-key'), 'utf8').trim();
    expect(output).not.toContain(adminKey);
    await waitFor(() => events.includes('calibration.uploaded'), 10_000);
    await sub.close();

    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(output).toContain('qlab: stopped');
    await expect(fetch(`http://127.0.0.1:${storePort}/health`)).rejects.toThrow();
    // Ten services start one after another from source (tsx compiles each): slow on a busy CI box.
  }, 180_000);
});
