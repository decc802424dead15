import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { baseEnv, ConfigError, env, loadConfig, requireTokenOffLoopback } from '@qlab/kit';
import { z } from 'zod';
import type { DomainName } from './domain/domains';

const MB = 1024 * 1024;
const DOMAIN_PORTS: Record<DomainName, number> = { test: 8200, generator: 8201, benchmark: 8202 };

export const envSchema = z.object({
  ...baseEnv(0),
  /** test | generator | benchmark (or --domain). */
  ANALYTICS_DOMAIN: z.enum(['test', 'generator', 'benchmark']).optional(),
  /** The DuckDB file. Default DATA_DIR/analytics/<domain>.duckdb */
  ANALYTICS_DB_PATH: env.optionalString(),
  /** When set, every API route needs `Authorization: Bearer <token>` (or `X-API-Key: <token>`). */
  ANALYTICS_API_TOKEN: env.optionalString(),
  /** Queries running longer are interrupted (503). Default 10s. */
  ANALYTICS_QUERY_TIMEOUT: env.duration('10s'),
  /** Bulk loads may run this long. Default 10m. */
  ANALYTICS_LOAD_TIMEOUT: env.duration('10m'),
  /** Largest bulk NDJSON/CSV body in bytes (413 above). Default 2 GiB. */
  ANALYTICS_MAX_BULK_BYTES: env.int(2048 * MB, 1),
  /** DuckDB worker threads. Default 2. */
  ANALYTICS_THREADS: env.int(2, 1),
  /** DuckDB's memory_limit (beyond it, big sorts and joins spill to disk). Default 4GB. */
  ANALYTICS_MEMORY_LIMIT: z
    .string()
    .regex(/^\d{1,6}(\.\d{1,3})?\s?(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$/, 'a size such as 512MB or 4GB')
    .default('4GB'),
  /** MQTT broker for events; events are off when unset. */
  MQTT_URL: env.optionalString(),
  /** Where `…/export/lake` writes: file:///path or s3://bucket/prefix. Default DATA_DIR/analytics (the lake in its lake/). */
  BLOB_STORE_URL: env.optionalString(),
  /** Export the last two days to the lake this often (0 = only on request). Default 0. */
  ANALYTICS_LAKE_EVERY: env.duration('0', { allowZero: true }),
});

export interface Config {
  domain: DomainName;
  host: string;
  port: number;
  dataDir: string;
  dbPath: string;
  apiToken?: string;
  queryTimeoutMs: number;
  loadTimeoutMs: number;
  maxBulkBytes: number;
  threads: number;
  /** DuckDB memory_limit, e.g. 4GB. */
  memoryLimit: string;
  /** file:///… (default: dataDir) or s3://bucket/prefix, for the lake. */
  blobStoreUrl: string;
  /** ms between scheduled lake exports; 0 = none. */
  lakeEveryMs: number;
  logLevel: z.infer<typeof envSchema>['LOG_LEVEL'];
  mqttUrl?: string;
}

export const USAGE = `usage: analytics --domain test|generator|benchmark [--port PORT] [--db-path FILE]

  --domain   which domain this process serves (env ANALYTICS_DOMAIN)
  --port     port to listen on (env PORT; default 8200 test, 8201 generator, 8202 benchmark)
  --db-path  the DuckDB file (env ANALYTICS_DB_PATH; seed 003's flag)
  --server   accepted and ignored (seed 003's test API took it; this always serves)`;

export function loadAnalyticsConfig(argv: string[], environment: NodeJS.ProcessEnv): Config | undefined {
  let flags: { domain?: string; port?: string; 'db-path'?: string; server?: boolean; help?: boolean };
  try {
    flags = parseArgs({
      args: argv,
      options: {
        domain: { type: 'string' },
        port: { type: 'string' },
        'db-path': { type: 'string' },
        server: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }).values;
  } catch (err) {
    throw new ConfigError([`${(err as Error).message}\n${USAGE}`]);
  }
  if (flags.help) return undefined;
  const merged = { ...environment };
  if (flags.domain !== undefined) merged.ANALYTICS_DOMAIN = flags.domain;
  if (flags.port !== undefined) merged.PORT = flags.port;
  if (flags['db-path'] !== undefined) merged.ANALYTICS_DB_PATH = flags['db-path'];
  const e = loadConfig(envSchema, merged);
  if (!e.ANALYTICS_DOMAIN)
    throw new ConfigError([
      `ANALYTICS_DOMAIN (or --domain) is required: test, generator or benchmark\n${USAGE}`,
    ]);
  const domain = e.ANALYTICS_DOMAIN;
  requireTokenOffLoopback(e.HOST, e.ANALYTICS_API_TOKEN, 'ANALYTICS_API_TOKEN');
  const dataDir = path.resolve(e.DATA_DIR, 'analytics');
  return {
    domain,
    host: e.HOST,
    // PORT unset means the domain's own default; an explicit PORT=0 means any free port.
    port: merged.PORT === undefined || merged.PORT === '' ? DOMAIN_PORTS[domain] : e.PORT,
    dataDir,
    dbPath: dbPathOf(e.ANALYTICS_DB_PATH, dataDir, domain),
    apiToken: e.ANALYTICS_API_TOKEN,
    queryTimeoutMs: e.ANALYTICS_QUERY_TIMEOUT,
    loadTimeoutMs: e.ANALYTICS_LOAD_TIMEOUT,
    maxBulkBytes: e.ANALYTICS_MAX_BULK_BYTES,
    threads: e.ANALYTICS_THREADS,
    memoryLimit: e.ANALYTICS_MEMORY_LIMIT,
    blobStoreUrl: e.BLOB_STORE_URL ?? pathToFileURL(dataDir).href,
    lakeEveryMs: e.ANALYTICS_LAKE_EVERY,
    logLevel: e.LOG_LEVEL,
    mqttUrl: e.MQTT_URL,
  };
}

/**
 * The DuckDB file: the given path (relative to the working directory, as seed 003's --db-path
 * was), DuckDB's `:memory:` as is, or the domain's file in the data folder.
 */
function dbPathOf(given: string | undefined, dataDir: string, domain: string): string {
  if (given === ':memory:') return given;
  return path.resolve(given ?? path.join(dataDir, `${domain}.duckdb`));
}
