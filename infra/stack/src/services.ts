import path from 'node:path';
import { SERVICES, type ServiceEntry, serviceById } from '@qlab/registry';

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
 * `<PREFIX>_URL` and `<PREFIX>_TOKEN`, e.g. CALIBRATION_STORE, ANALYTICS_TEST (the registry's).
 */
export const peerEnvPrefix = (service: string) => {
  const entry = serviceById(service);
  if (!entry) throw new Error(`${service} is not in packages/registry`);
  return entry.envPrefix;
};

/** Every service, from the registry (packages/registry), the gateway last. */
export const STACK_SERVICES: StackService[] = SERVICES.map((s: ServiceEntry) => ({
  name: s.id,
  dir: s.dir,
  defaultPort: s.port,
  portEnv: `${s.envPrefix}_PORT`,
  ...(s.env ? { env: { ...s.env } } : {}),
  ...(s.tokenEnv ? { tokenEnv: s.tokenEnv } : {}),
}));

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
