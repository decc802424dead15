import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigError } from '@qlab/kit';
import { z } from 'zod';

/**
 * Seed 003's unified_api_server.py flags and --config file, read as the gateway's settings:
 * `--gateway-port` is its port; `--test-api-port`, `--generator-api-port`, `--benchmark-api-port`
 * say where each analytics domain listens (on this host). The file has the same keys, per
 * component `{enabled, port, host, module, args}`. Precedence: flags, then the file, then the
 * environment.
 */
export const USAGE = `usage: gateway [--gateway-port PORT] [--test-api-port PORT] [--generator-api-port PORT]
               [--benchmark-api-port PORT] [--config FILE]

  --gateway-port        port to listen on (env PORT, default 8080)
  --test-api-port       the test analytics domain's port on this host (env ANALYTICS_TEST_URL)
  --generator-api-port  the generator domain's (env ANALYTICS_GENERATOR_URL)
  --benchmark-api-port  the benchmark domain's (env ANALYTICS_BENCHMARK_URL)
  --config FILE         seed 003's JSON file: test_api, generator_api, benchmark_api, gateway`;

const port = z.number().int().min(1).max(65535);
const component = z
  .object({
    enabled: z.boolean().default(true),
    port: port.optional(),
    host: z.string().min(1).max(255).optional(),
    /** The seed started each component from a Python module: qlab runs each domain as its own service. */
    module: z.string().optional(),
    args: z.array(z.string()).optional(),
  })
  .strict();
const configFile = z
  .object({
    test_api: component.optional(),
    generator_api: component.optional(),
    benchmark_api: component.optional(),
    gateway: component.omit({ module: true, args: true }).optional(),
  })
  .strict();

const COMPONENTS = [
  ['test_api', 'test-api-port', 'ANALYTICS_TEST'],
  ['generator_api', 'generator-api-port', 'ANALYTICS_GENERATOR'],
  ['benchmark_api', 'benchmark-api-port', 'ANALYTICS_BENCHMARK'],
] as const;

export interface SeedFlags {
  /** Environment overrides (PORT, HOST, ANALYTICS_*_URL). */
  env: Record<string, string>;
  /** Upstreams the file turned off (`enabled: false`): their mounts answer 503. */
  disabled: string[];
  /** Things the file says that qlab does elsewhere, for a warning at start. */
  notes: string[];
  help: boolean;
}

/** Where to reach a component listening on `host` (0.0.0.0 and :: are every address: use loopback). */
const reach = (host: string | undefined, p: number) => {
  const h = host === undefined || host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  return `http://${h.includes(':') ? `[${h}]` : h}:${p}`;
};

export function readSeedFlags(argv: string[]): SeedFlags {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args: argv,
      options: {
        'gateway-port': { type: 'string' },
        'test-api-port': { type: 'string' },
        'generator-api-port': { type: 'string' },
        'benchmark-api-port': { type: 'string' },
        config: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }).values;
  } catch (err) {
    throw new ConfigError([`${(err as Error).message}\n${USAGE}`]);
  }
  const out: SeedFlags = { env: {}, disabled: [], notes: [], help: values.help === true };
  const flagPort = (name: string): number | undefined => {
    const v = values[name];
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1 || n > 65535)
      throw new ConfigError([`--${name}: "${v}" is not a port`]);
    return n;
  };

  if (typeof values.config === 'string') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(values.config, 'utf8'));
    } catch (err) {
      throw new ConfigError([`--config ${values.config}: ${(err as Error).message}`]);
    }
    const file = configFile.safeParse(parsed);
    if (!file.success)
      throw new ConfigError(
        file.error.issues.map((i) => `--config ${values.config}: ${i.path.join('.')}: ${i.message}`),
      );
    const gw = file.data.gateway;
    if (gw?.enabled === false)
      throw new ConfigError([`--config: gateway.enabled is false, but this is the gateway`]);
    if (gw?.port !== undefined) out.env.PORT = String(gw.port);
    if (gw?.host !== undefined) out.env.HOST = gw.host;
    for (const [key, , envPrefix] of COMPONENTS) {
      const c = file.data[key];
      if (!c) continue;
      if (!c.enabled) out.disabled.push(`analytics-${key.replace('_api', '')}`);
      if (c.port !== undefined) out.env[`${envPrefix}_URL`] = reach(c.host, c.port);
      if (c.module || c.args?.length)
        out.notes.push(
          `--config ${key}: module/args are not run by the gateway; start that domain as its own service (analytics --domain ${key.replace('_api', '')}${c.args?.length ? ` ${c.args.join(' ')}` : ''})`,
        );
    }
  }
  const gatewayPort = flagPort('gateway-port');
  if (gatewayPort !== undefined) out.env.PORT = String(gatewayPort);
  for (const [, flag, envPrefix] of COMPONENTS) {
    const p = flagPort(flag);
    if (p !== undefined) out.env[`${envPrefix}_URL`] = reach(undefined, p);
  }
  return out;
}
