import { readFileSync, statSync } from 'node:fs';
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
/** A DNS name, an IPv4 address, or an IPv6 address (bare or in brackets). */
const HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})|\[?[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*\]?)$/;
/** The seed's file is a few hundred bytes; anything this big is not it. */
const MAX_CONFIG_BYTES = 64 * 1024;
const component = z
  .object({
    enabled: z.boolean().default(true),
    port: port.optional(),
    host: z
      .string()
      .regex(HOST, 'must be a host name or an IP address (no scheme, port, path or credentials)')
      .optional(),
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
  const bare = host?.replace(/^\[(.*)\]$/, '$1');
  const h = bare === undefined || bare === '0.0.0.0' || bare === '::' ? '127.0.0.1' : bare;
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
    // Decimal digits only: Number() would take 0x50, 1e3 or " 80 ".
    const n = typeof v === 'string' && /^\d{1,5}$/.test(v) ? Number(v) : Number.NaN;
    if (!Number.isInteger(n) || n < 1 || n > 65535)
      throw new ConfigError([`--${name}: "${String(v).slice(0, 20)}" is not a port (1-65535)`]);
    return n;
  };

  if (typeof values.config === 'string') {
    const file = configFile.safeParse(readConfigFile(values.config));
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
  // The gateway proxying to itself answers every call with its own 401: say what is wrong.
  if (out.env.PORT !== undefined) {
    const self = new Set([reach(undefined, Number(out.env.PORT)), reach('localhost', Number(out.env.PORT))]);
    for (const [key, , envPrefix] of COMPONENTS)
      if (self.has(out.env[`${envPrefix}_URL`] ?? ''))
        throw new ConfigError([
          `${key} is on the gateway's own port ${out.env.PORT}: give it a port of its own`,
        ]);
  }
  return out;
}

/**
 * The --config file as JSON: a regular file of at most 64 KiB (a FIFO or /dev/zero would block
 * the start). A parse error names the position only, never the text: the path might be a
 * secret file given by mistake, and the error goes to the log.
 */
function readConfigFile(file: string): unknown {
  let text: string;
  try {
    const st = statSync(file);
    if (!st.isFile()) throw new Error('is not a regular file');
    if (st.size > MAX_CONFIG_BYTES) throw new Error(`is ${st.size} bytes, more than a config file (64 KiB)`);
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError([
      `--config ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    ]);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    const at = /position (\d+)/.exec((err as Error).message)?.[1];
    throw new ConfigError([`--config ${file}: not valid JSON${at ? ` (at byte ${at})` : ''}`]);
  }
}
