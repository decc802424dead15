import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { type EmbeddedBroker, startEmbeddedBroker } from '@qlab/events';
import { formatServiceLine } from './format-log';
import { peerTokenVariable, serviceToken } from './service-tokens';
import { peerEnvPrefix, type StackService, serviceCommand } from './services';

export interface StackOptions {
  root: string;
  dataDir: string;
  services: StackService[];
  env: NodeJS.ProcessEnv;
  /** Run services from TypeScript source instead of dist (tests). */
  fromSource?: boolean;
  /** Where human-readable lines go. */
  print: (line: string) => void;
}

export interface RunningService {
  service: StackService;
  url: string;
  /** The token it requires (DATA_DIR/tokens/<name> unless given in the environment). */
  token?: string;
  child: ChildProcess;
}

export interface Stack {
  mqttUrl: string;
  services: RunningService[];
  /** Resolves when a service exits on its own (the stack is then broken). */
  crashed: Promise<string>;
  stop(): Promise<void>;
}

async function startBroker(env: NodeJS.ProcessEnv, print: (l: string) => void): Promise<EmbeddedBroker> {
  const explicit = env.MQTT_PORT !== undefined;
  const port = Number(env.MQTT_PORT ?? 1883);
  try {
    return await startEmbeddedBroker({ port });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || explicit) throw err;
    // Another broker (often a system Mosquitto) has 1883: run ours beside it rather than fail.
    print(
      `port ${port} is taken (another MQTT broker?); the embedded broker takes a free port instead. Set MQTT_URL to use that broker.`,
    );
    return startEmbeddedBroker({ port: 0 });
  }
}

async function waitHealthy(url: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (child.exitCode !== null)
      throw new Error(`exited with code ${child.exitCode} before becoming healthy`);
    try {
      const res = await fetch(`${url}/health`);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 150));
  }
  throw new Error(`not healthy after ${timeoutMs} ms`);
}

function stopChild(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** Starts the broker (unless MQTT_URL names one) and every service, each on its port, and waits until all are healthy. */
export async function startStack(options: StackOptions): Promise<Stack> {
  const { print } = options;
  // The seeds' DATABASE_URL is read by two services (quantum-tracker, job-worker) as their own
  // database: in one stack it would give them one file. Each takes its qlab name instead.
  const { DATABASE_URL: ambiguous, ...env } = options.env;
  if (ambiguous)
    print(
      'DATABASE_URL is not passed on: set TRACKER_DB_URL and JOBS_DB_URL (each service has its own database)',
    );
  const broker = env.MQTT_URL ? undefined : await startBroker(env, print);
  const mqttUrl = env.MQTT_URL || broker!.url;
  const running: RunningService[] = [];
  let stopping = false;
  let reportCrash: (why: string) => void = () => undefined;
  const crashed = new Promise<string>((resolve) => {
    reportCrash = resolve;
  });

  // If the launcher dies without stopping (an uncaught error), take the services with it.
  process.once('exit', () => {
    for (const r of running) if (r.child.exitCode === null) r.child.kill('SIGTERM');
  });

  const stop = async () => {
    stopping = true;
    await Promise.all(running.map((r) => stopChild(r.child, 10_000)));
    await broker?.close();
  };

  try {
    for (const service of options.services) {
      const port = Number(env[service.portEnv] ?? service.defaultPort);
      // Services find each other on the ports the stack gave them, with each other's tokens
      // (job-worker publishes to the store; the gateway calls everyone).
      const peers = Object.fromEntries(
        running.flatMap((r) => [
          [`${peerEnvPrefix(r.service.name)}_URL`, r.url],
          ...(r.token ? [[peerTokenVariable(r.service.name), r.token]] : []),
        ]),
      );
      const token = service.tokenEnv
        ? serviceToken(options.dataDir, service.name, env[service.tokenEnv])
        : undefined;
      const { cmd, args } = serviceCommand(options.root, service, options.fromSource ?? false);
      const child = spawn(cmd, args, {
        cwd: options.root,
        env: {
          ...peers,
          ...env,
          ...service.env,
          ...(service.tokenEnv && token ? { [service.tokenEnv]: token } : {}),
          HOST: env.HOST ?? '127.0.0.1',
          PORT: String(port),
          DATA_DIR: options.dataDir,
          MQTT_URL: mqttUrl,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
        // Own process group: Ctrl-C reaches only the launcher, which stops each service once.
        detached: true,
      });
      for (const stream of [child.stdout!, child.stderr!]) {
        createInterface({ input: stream }).on('line', (line) => print(formatServiceLine(service.name, line)));
      }
      child.on('exit', (code, signal) => {
        if (!stopping) reportCrash(`${service.name} exited (code ${code}, signal ${signal})`);
      });
      const url = `http://127.0.0.1:${port}`;
      running.push({ service, url, child, token });
      try {
        await waitHealthy(url, child, 30_000);
      } catch (err) {
        throw new Error(`${service.name} on port ${port} (${service.portEnv}): ${(err as Error).message}`);
      }
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { mqttUrl, services: running, crashed, stop };
}
