import { hostname } from 'node:os';
import path from 'node:path';
import {
  applySeedAliases,
  baseEnv,
  ConfigError,
  env,
  loadConfig,
  logLevel,
  requireTokenOffLoopback,
  type SeedAlias,
  unreadSettings,
} from '@qlab/kit';
import { z } from 'zod';

export const serverEnv = z.object({
  ...baseEnv(8100),
  /** SQLite file (default DATA_DIR/job-worker/jobs.db, WAL) or postgres://… */
  JOBS_DB_URL: env.optionalString(),
  /** Bearer token for the API; unset: open. */
  JOBS_API_TOKEN: env.optionalString(),
  /** A claimed job's lease (ms); a worker silent this long loses the job. Default 30 s. */
  JOBS_LEASE_MS: env.int(30_000, 1000),
  /** Job workspaces root (jobs/{id}/input|output). Default DATA_DIR/job-worker. */
  JOBS_STORAGE_DIR: env.optionalString(),
  /** Finished jobs (completed, error, cancelled) older than this are deleted with their files; 0 keeps them. Default 0. */
  JOBS_RETENTION: env.duration('0', true),
  /** Largest input or output file (bytes). Default 10 GiB. */
  JOBS_MAX_FILE_BYTES: env.int(10 * 1024 ** 3, 1),
  MQTT_URL: env.optionalString(),
  /**
   * The seed's event topic: when set (or BROADCAST_TYPE=mqtt), job lifecycle events are also
   * published there in the seed's payload shape (seed-broadcast.ts). Unset: CloudEvents only.
   */
  MQTT_TOPIC: env.optionalString(),
  /** The seed's broadcaster: `mqtt` (its default topic then: inference/events) or anything else (none). */
  BROADCAST_TYPE: env.optionalString(),
  /** Task types the in-process worker pool runs ("" = none; "*" = every built-in). Default "*". */
  WORKER_SUPPORTED_TASKS: z.string().default('*'),
  WORKER_CONCURRENCY: env.int(2, 0),
  /** Milliseconds between claims when the queue is empty (the seed's WORKER_POLL_INTERVAL is in seconds). */
  WORKER_POLL_INTERVAL_MS: env.int(1000, 10),
  WORKER_ID: env.optionalString(),
  /** For calibration.publish. */
  CALIBRATION_STORE_URL: env.optionalString(),
  CALIBRATION_STORE_TOKEN: env.optionalString(),
});

/** The seed's default topic for job events (cl-server-shared Config.MQTT_TOPIC). */
export const SEED_TOPIC = 'inference/events';

/** The seed's poll interval is in seconds (its README: "Poll interval seconds (default: 5)"). */
function secondsToMs(value: string): string {
  const s = Number(value);
  if (!Number.isFinite(s) || s <= 0)
    throw new ConfigError([
      `WORKER_POLL_INTERVAL: "${value}" is not a number of seconds (qlab's own WORKER_POLL_INTERVAL_MS takes ms)`,
    ]);
  return String(Math.max(10, Math.round(s * 1000)));
}

/** MQTT_BROKER (host, default localhost) and MQTT_PORT (default 1883) as one URL. */
function brokerUrl(_value: string, e: NodeJS.ProcessEnv): string {
  const host = e.MQTT_BROKER || 'localhost';
  const port = e.MQTT_PORT || '1883';
  if (!/^\d{1,5}$/.test(port) || Number(port) > 65535)
    throw new ConfigError([`MQTT_PORT: "${port}" is not a port number`]);
  return `mqtt://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/**
 * cl-server-shared's settings (its README's tables), read as qlab's; the qlab name wins when
 * both are set. CL_SERVER_DIR is the base folder, as DATA_DIR is here.
 */
const SEED_ALIASES: SeedAlias[] = [
  ['CL_SERVER_DIR', 'DATA_DIR'],
  ['STORE_DATABASE_URL', 'JOBS_DB_URL'],
  ['DATABASE_URL', 'JOBS_DB_URL'],
  ['MEDIA_STORAGE_DIR', 'JOBS_STORAGE_DIR'],
  ['COMPUTE_STORAGE_DIR', 'JOBS_STORAGE_DIR'],
  ['MQTT_BROKER', 'MQTT_URL', brokerUrl],
  ['MQTT_PORT', 'MQTT_URL', brokerUrl],
  ['WORKER_POLL_INTERVAL', 'WORKER_POLL_INTERVAL_MS', secondsToMs],
];

/** Names that look like job-worker settings; any not read is named in a warning at start. */
const OWN_PREFIXES = [
  'JOBS_',
  'WORKER_',
  'MQTT_',
  'CL_SERVER',
  'STORE_',
  'MEDIA_',
  'COMPUTE_',
  'BROADCAST_',
  'CALIBRATION_STORE_',
];
/** Seed settings that are read through an alias, or belong to other services (the gateway's keys replace the seed's auth). */
const READ_ELSEWHERE = [
  'MQTT_BROKER',
  'MQTT_PORT',
  'WORKER_POLL_INTERVAL',
  'STORE_DATABASE_URL',
  'MEDIA_STORAGE_DIR',
  'COMPUTE_STORAGE_DIR',
  'CL_SERVER_DIR',
];

export type ServerConfig = ReturnType<typeof loadServerConfig>;

export function loadServerConfig(environment: NodeJS.ProcessEnv = process.env) {
  const { merged, used } = applySeedAliases(environment, SEED_ALIASES);
  const e = loadConfig(serverEnv, merged);
  const unread = unreadSettings(environment, OWN_PREFIXES, [
    ...Object.keys(serverEnv.shape),
    ...READ_ELSEWHERE,
  ]);
  const broadcast =
    e.MQTT_TOPIC !== undefined || e.BROADCAST_TYPE !== undefined
      ? e.BROADCAST_TYPE === undefined || e.BROADCAST_TYPE.toLowerCase() === 'mqtt'
        ? (e.MQTT_TOPIC ?? SEED_TOPIC)
        : undefined
      : undefined;
  if (broadcast && !e.MQTT_URL)
    throw new ConfigError([
      `MQTT_TOPIC/BROADCAST_TYPE: seed-style events need a broker; set MQTT_URL (or the seed's MQTT_BROKER and MQTT_PORT)`,
    ]);
  requireTokenOffLoopback(e.HOST, e.JOBS_API_TOKEN, 'JOBS_API_TOKEN');
  const dataDir = path.resolve(e.DATA_DIR, 'job-worker');
  return {
    host: e.HOST,
    port: e.PORT,
    logLevel: e.LOG_LEVEL,
    dbUrl: e.JOBS_DB_URL ?? path.join(dataDir, 'jobs.db'),
    apiToken: e.JOBS_API_TOKEN,
    leaseMs: e.JOBS_LEASE_MS,
    storageDir: path.resolve(e.JOBS_STORAGE_DIR ?? dataDir),
    maxFileBytes: e.JOBS_MAX_FILE_BYTES,
    retentionMs: e.JOBS_RETENTION,
    mqttUrl: e.MQTT_URL,
    /** The seed's topic for its event payloads, when asked for (MQTT_TOPIC, BROADCAST_TYPE). */
    seedTopic: broadcast,
    worker: workerSettings(e),
    calibrationStore: { url: e.CALIBRATION_STORE_URL, token: e.CALIBRATION_STORE_TOKEN },
    /** For the start log: seed names read, and names that look like settings but are not read. */
    aliasesUsed: used,
    unreadSettings: unread,
  };
}

function workerSettings(e: {
  WORKER_SUPPORTED_TASKS: string;
  WORKER_CONCURRENCY: number;
  WORKER_POLL_INTERVAL_MS: number;
  WORKER_ID?: string;
}) {
  const tasks = e.WORKER_SUPPORTED_TASKS.trim();
  return {
    taskTypes:
      tasks === '*'
        ? undefined
        : tasks
            .split(',')
            .map((t) => t.trim())
            .filter(Boolean),
    concurrency: e.WORKER_CONCURRENCY,
    pollIntervalMs: e.WORKER_POLL_INTERVAL_MS,
    workerId: e.WORKER_ID ?? `${hostname()}-${process.pid}`,
  };
}

/** A remote worker (`qlab worker`): talks to the job-worker API at JOBS_URL. */
export const remoteWorkerEnv = z.object({
  JOBS_URL: z.url(),
  JOBS_API_TOKEN: env.optionalString(),
  JOBS_LEASE_MS: env.int(30_000, 1000),
  WORKER_SUPPORTED_TASKS: z.string().default('*'),
  WORKER_CONCURRENCY: env.int(1, 1),
  WORKER_POLL_INTERVAL_MS: env.int(1000, 10),
  WORKER_ID: env.optionalString(),
  CALIBRATION_STORE_URL: env.optionalString(),
  CALIBRATION_STORE_TOKEN: env.optionalString(),
  LOG_LEVEL: logLevel(),
});

export function loadRemoteWorkerConfig(environment: NodeJS.ProcessEnv = process.env) {
  const { merged } = applySeedAliases(
    environment,
    SEED_ALIASES.filter(([seed]) => seed === 'WORKER_POLL_INTERVAL'),
  );
  const e = loadConfig(remoteWorkerEnv, merged);
  return {
    jobsUrl: e.JOBS_URL,
    token: e.JOBS_API_TOKEN,
    leaseMs: e.JOBS_LEASE_MS,
    logLevel: e.LOG_LEVEL,
    worker: workerSettings(e),
    calibrationStore: { url: e.CALIBRATION_STORE_URL, token: e.CALIBRATION_STORE_TOKEN },
  };
}
