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
  /** Environment that depends on the stack's data dir or the caller's environment. */
  envFromStack?: (ctx: { dataDir: string; env: NodeJS.ProcessEnv }) => Record<string, string>;
}

/** Every service that exists; each issue that adds a service adds a line here. */
export const STACK_SERVICES: StackService[] = [
  {
    name: 'calibration-store',
    dir: 'services/calibration-store',
    defaultPort: 5050,
    portEnv: 'CALIBRATION_STORE_PORT',
  },
  {
    name: 'chunked-upload',
    dir: 'services/chunked-upload',
    defaultPort: 3000,
    portEnv: 'CHUNKED_UPLOAD_PORT',
  },
  { name: 'job-worker', dir: 'services/job-worker', defaultPort: 8100, portEnv: 'JOB_WORKER_PORT' },
  {
    name: 'quantum-tracker',
    dir: 'services/quantum-tracker',
    defaultPort: 8000,
    portEnv: 'QUANTUM_TRACKER_PORT',
  },
  // One analytics codebase, one process and DuckDB file per domain.
  ...(['test', 'generator', 'benchmark'] as const).map((domain, i) => ({
    name: `analytics-${domain}`,
    dir: 'services/analytics',
    defaultPort: 8200 + i,
    portEnv: `ANALYTICS_${domain.toUpperCase()}_PORT`,
    env: { ANALYTICS_DOMAIN: domain },
  })),
  // Last: it finds every service above through the <SERVICE>_URL variables the stack passes on.
  {
    name: 'gateway',
    dir: 'gateway',
    defaultPort: 8080,
    portEnv: 'GATEWAY_PORT',
    // The gateway speaks to chunked-upload with that service's own key.
    envFromStack: ({ dataDir, env }): Record<string, string> => {
      if (env.CHUNKED_UPLOAD_TOKEN) return {};
      if (env.UPLOAD_API_KEYS) return { CHUNKED_UPLOAD_TOKEN: env.UPLOAD_API_KEYS.split(',')[0]!.trim() };
      return { CHUNKED_UPLOAD_TOKEN_FILE: path.join(dataDir, 'chunked-upload', 'generated-api-key') };
    },
  },
];

/** The command that runs a service: its build output, or its source (tests, no build). */
export function serviceCommand(
  root: string,
  service: StackService,
  fromSource: boolean,
): { cmd: string; args: string[] } {
  const dir = path.join(root, service.dir);
  if (fromSource) {
    return {
      cmd: path.join(root, 'node_modules/.bin/tsx'),
      args: ['--conditions=@qlab/source', path.join(dir, 'src/main.ts')],
    };
  }
  return { cmd: process.execPath, args: ['--enable-source-maps', path.join(dir, 'dist/main.js')] };
}
