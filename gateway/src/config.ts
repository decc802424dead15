import path from 'node:path';
import { baseEnv, ConfigError, env, loadConfig } from '@qlab/kit';
import { MOUNTED, type MountedId } from '@qlab/registry';
import { z } from 'zod';
import { defaultConsoleDir } from './console-files';

export const SCOPES = ['read', 'write', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

/** The services behind the gateway, from the registry: `<PREFIX>_URL`, `<PREFIX>_TOKEN`, port. */
export const UPSTREAMS = MOUNTED.map((s) => ({ id: s.id, env: s.envPrefix, port: s.port }));
export type UpstreamId = MountedId;

export interface Upstream {
  id: UpstreamId;
  url: string;
  /** The service's own token, sent by the gateway instead of the caller's key. */
  token?: string;
  /** Turned off in seed 003's --config (`enabled: false`): its mount answers 503. */
  disabled?: boolean;
}

export interface BootstrapKey {
  key: string;
  scopes: Scope[];
}

export interface Config {
  host: string;
  port: number;
  dataDir: string;
  upstreams: Upstream[];
  bootstrapKeys: BootstrapKey[];
  /** Requests per minute per key; 0 = unlimited. */
  rateLimit: number;
  /** The key database: SQLite file (default DATA_DIR/gateway/keys.db) or postgres:// shared by replicas. */
  dbUrl: string;
  /** Rate-limit counters shared by replicas; this process's own when unset. */
  redisUrl?: string;
  mqttUrl?: string;
  /** Per-request upstream timeout for ordinary calls (uploads and downloads are not cut). */
  proxyTimeoutMs: number;
  /** Per-service deadline in aggregates. */
  aggregateTimeoutMs: number;
  logLevel: z.infer<ReturnType<typeof baseEnv>['LOG_LEVEL']>;
  /** The built console served at `/` (GATEWAY_CONSOLE_DIR; default the workspace's packages/console/dist). */
  consoleDir?: string;
}

/** GATEWAY_API_KEYS: "key1:read+write,key2:admin" (a key without scopes gets all three). */
export function parseBootstrapKeys(value: string | undefined): BootstrapKey[] {
  if (!value) return [];
  return value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((entry) => {
      const [key, scopeText] = entry.split(':');
      if (!key || key.length < 16)
        throw new ConfigError(['GATEWAY_API_KEYS: every key needs at least 16 characters']);
      const scopes = (scopeText ? scopeText.split('+') : [...SCOPES]) as Scope[];
      for (const s of scopes) {
        if (!SCOPES.includes(s))
          throw new ConfigError([`GATEWAY_API_KEYS: unknown scope "${s}" (read, write, admin)`]);
      }
      return { key, scopes };
    });
}

export function loadGatewayConfig(environment: NodeJS.ProcessEnv, disabled: string[] = []): Config {
  const schema = z.object({
    ...baseEnv(8080),
    GATEWAY_API_KEYS: env.optionalString(),
    GATEWAY_RATE_LIMIT: env.int(600, 0),
    GATEWAY_PROXY_TIMEOUT: env.duration('60s'),
    GATEWAY_AGGREGATE_TIMEOUT: env.duration('3s'),
    MQTT_URL: env.optionalString(),
    GATEWAY_CONSOLE_DIR: env.optionalString(),
    GATEWAY_DB_URL: env.optionalString(),
    REDIS_URL: env.optionalString(),
  });
  const upstreamSchema = z.object(
    Object.fromEntries(
      UPSTREAMS.flatMap((u) => [
        [`${u.env}_URL`, z.url().optional()],
        [`${u.env}_TOKEN`, env.optionalString()],
      ]),
    ),
  );
  const e = loadConfig(schema, environment);
  const urls = loadConfig(upstreamSchema, environment) as Record<string, string | undefined>;
  return {
    host: e.HOST,
    port: e.PORT,
    dataDir: path.resolve(e.DATA_DIR, 'gateway'),
    upstreams: UPSTREAMS.map((u) => ({
      id: u.id,
      url: (urls[`${u.env}_URL`] ?? `http://127.0.0.1:${u.port}`).replace(/\/$/, ''),
      token: urls[`${u.env}_TOKEN`],
      ...(disabled.includes(u.id) ? { disabled: true } : {}),
    })),
    bootstrapKeys: parseBootstrapKeys(e.GATEWAY_API_KEYS),
    rateLimit: e.GATEWAY_RATE_LIMIT,
    dbUrl: e.GATEWAY_DB_URL ?? path.join(path.resolve(e.DATA_DIR, 'gateway'), 'keys.db'),
    redisUrl: e.REDIS_URL,
    mqttUrl: e.MQTT_URL,
    proxyTimeoutMs: e.GATEWAY_PROXY_TIMEOUT,
    aggregateTimeoutMs: e.GATEWAY_AGGREGATE_TIMEOUT,
    logLevel: e.LOG_LEVEL,
    consoleDir: path.resolve(e.GATEWAY_CONSOLE_DIR ?? defaultConsoleDir()),
  };
}
