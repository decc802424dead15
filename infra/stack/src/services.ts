import path from 'node:path';

/** One service of the local stack: where it lives, its port, and how to tell it is up. */
export interface StackService {
  name: string;
  /** Folder relative to the repo root. */
  dir: string;
  defaultPort: number;
  /** Environment variable that overrides the port for this service when started by the stack. */
  portEnv: string;
  /** Extra environment for this service. */
  env?: Record<string, string>;
  /**
   * The variable the service reads its API token from. The stack gives it one (see
   * service-tokens.ts) and passes the same to the services started after it as
   * <SERVICE>_TOKEN, which is how the gateway and job-worker call it.
   */
  tokenEnv?: string;
}

/**
 * The prefix of the variables a peer (the gateway, job-worker) finds a service by:
 * `<PREFIX>_URL` and `<PREFIX>_TOKEN`, e.g. CALIBRATION_STORE, ANALYTICS_TEST.
 */
export const peerEnvPrefix = (service: string) => service.toUpperCase().replace(/-/g, '_');

/** Every service that exists; each issue that adds a service adds a line here. */
export const STACK_SERVICES: StackService[] = [
  {
    name: 'calibration-store',
    dir: 'services/calibration-store',
    defaultPort: 5050,
    portEnv: 'CALIBRATION_STORE_PORT',
    tokenEnv: 'QIBO_API_TOKEN',
  },
  {
    name: 'chunked-upload',
    dir: 'services/chunked-upload',
    defaultPort: 3000,
    portEnv: 'CHUNKED_UPLOAD_PORT',
    tokenEnv: 'UPLOAD_GATEWAY_TOKEN',
  },
  {
    name: 'job-worker',
    dir: 'services/job-worker',
    defaultPort: 8100,
    portEnv: 'JOB_WORKER_PORT',
    tokenEnv: 'JOBS_API_TOKEN',
  },
  {
    name: 'quantum-tracker',
    dir: 'services/quantum-tracker',
    defaultPort: 8000,
    portEnv: 'QUANTUM_TRACKER_PORT',
    tokenEnv: 'TRACKER_API_TOKEN',
  },
  // One analytics codebase, one process and DuckDB file per domain.
  ...(['test', 'generator', 'benchmark'] as const).map((domain, i) => ({
    name: `analytics-${domain}`,
    dir: 'services/analytics',
    defaultPort: 8200 + i,
    portEnv: `ANALYTICS_${domain.toUpperCase()}_PORT`,
    env: { ANALYTICS_DOMAIN: domain },
    tokenEnv: 'ANALYTICS_API_TOKEN',
  })),
  // Last: it finds every service above through the <SERVICE>_URL and <SERVICE>_TOKEN variables
  // the stack passes on.
  { name: 'gateway', dir: 'gateway', defaultPort: 8080, portEnv: 'GATEWAY_PORT' },
];

/** The command that runs a service: its build output, or its source (tests, no build). */
export function serviceCommand(
  root: string,
  service: StackService,
  fromSource: boolean,
): { cmd: string; args: string[] } {
  const dir = path.join(root, service.dir);
  if (fromSource) {
    // Node with tsx's loader rather than the tsx CLI, which SIGKILLs a child that is slow to
    // confirm a relayed SIGTERM (30 ms) and so breaks graceful shutdown on a busy machine.
    const loader = require.resolve('tsx', { paths: [root] });
    return {
      cmd: process.execPath,
      args: ['--conditions=@qlab/source', '--import', loader, path.join(dir, 'src/main.ts')],
    };
  }
  return { cmd: process.execPath, args: ['--enable-source-maps', path.join(dir, 'dist/main.js')] };
}
