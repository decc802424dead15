import { ConfigError } from './config';

/**
 * What a process does with an error nobody handled: one line on stderr naming the service and
 * the stack, then exit 1, so a supervisor (docker, systemd, the local stack) sees a crash and
 * restarts it. Never carry on in an unknown state, and never die without saying why.
 */
export function exitOnUnhandled(service: string): void {
  const die = (kind: string) => (err: unknown) => {
    const text = err instanceof Error ? (err.stack ?? err.message) : String(err);
    process.stderr.write(`${service}: ${kind}, exiting: ${text}\n`);
    process.exit(1);
  };
  process.on('uncaughtException', die('uncaught exception'));
  process.on('unhandledRejection', die('unhandled promise rejection'));
}

/**
 * Runs a service's async main: a configuration error exits 2 with every problem named, any
 * other start-up failure exits 1 with its stack, and so does any error left unhandled later.
 */
export function runMain(service: string, main: () => Promise<void>): void {
  exitOnUnhandled(service);
  // Data, keys and tokens are for this user only: new files 0600, new folders 0700.
  process.umask(0o077);
  main().catch((err: unknown) => {
    if (err instanceof ConfigError) {
      process.stderr.write(`${service}: ${err.message}\n`);
      process.exit(2);
    }
    process.stderr.write(`${service} failed to start: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  });
}
