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

/** The longest wait between claims (1 h): longer ones overflow Node's timers, which then fire at once. */
const MAX_POLL_MS = 3_600_000;

/** The longest lease (24 h): timers past 2^31 ms fire at once. */
const MAX_LEASE_MS = 86_400_000;

export const serverEnv = z.object({
  ...baseEnv(8100),
  /** SQLite file (default DATA_DIR/job-worker/jobs.db, WAL) or postgres://… */
  JOBS_DB_URL: env.optionalString(),
  /** Bearer token for the API; unset: open. */
  JOBS_API_TOKEN: env.optionalString(),
  /** A claimed job's lease: a duration (30s) or ms; a worker silent this long loses the job. Default 30s. */
  JOBS_LEASE_MS: env.duration('30s', { min: 1000, max: MAX_LEASE_MS }),
  /** Job workspaces root (jobs/{id}/input|output). Default DATA_DIR/job-worker. */
  JOBS_STORAGE_DIR: env.optionalString(),
  /**
   * Job files as objects in a blob store (`s3://bucket/prefix`, `file:///shared/folder`) instead
   * of JOBS_STORAGE_DIR: with JOBS_DB_URL on PostgreSQL, API replicas then serve every job.
   */
  BLOB_STORE_URL: env.optionalString(),
  /** Finished jobs (completed, error, cancelled) older than this are deleted with their files; 0 keeps them. Default 0. */
  JOBS_RETENTION: env.duration('0', { allowZero: true }),
  /** Largest input or output file (bytes). Default 10 GiB. */
  JOBS_MAX_FILE_BYTES: env.int(10 * 1024 ** 3, 1),
  MQTT_URL: env.optionalString(),
  /**
   * The seed's event topic: when set (or BROADCAST_TYPE=mqtt), job lifecycle events are also
   * published there in the seed's payload shape (seed-broadcast.ts). Unset: CloudEvents only.
   */
  MQTT_TOPIC: env.optionalString().refine((t) => t === undefined || isPublishTopic(t), {
    message: 'must be a topic to publish on: no + or # wildcards, no NUL, at most 65535 bytes',
  }),
  /** The seed's broadcaster: `mqtt` (its default topic then: inference/events) or anything else (none). */
  BROADCAST_TYPE: env.optionalString(),
  /** Task types the in-process worker pool runs ("" = none; "*" = every built-in). Default "*". */
  WORKER_SUPPORTED_TASKS: z.string().default('*'),
  WORKER_CONCURRENCY: env.int(2, 0),
  /** Time between claims when the queue is empty: a duration (1s) or ms (the seed's WORKER_POLL_INTERVAL is in seconds). */
  WORKER_POLL_INTERVAL_MS: env.duration('1s', { min: 10, max: MAX_POLL_MS }),
  WORKER_ID: env.optionalString(),
  /** For calibration.publish. */
  CALIBRATION_STORE_URL: env.optionalString(),
  CALIBRATION_STORE_TOKEN: env.optionalString(),
});

/** The seed's default topic for job events (cl-server-shared Config.MQTT_TOPIC). */
export const SEED_TOPIC = 'inference/events';

/** MQTT 3.1.1 §4.7.3: a topic to publish on has no wildcards; §1.5.3: no NUL, at most 65535 bytes. */
export function isPublishTopic(topic: string): boolean {
  return topic.length > 0 && !/[+#\u0000]/.test(topic) && Buffer.byteLength(topic) <= 65535;
}

/**
 * The seed's poll interval is in seconds (its README: "Poll interval seconds (default: 5)").
 * Before qlab read it as the seed does, it took WORKER_POLL_INTERVAL in ms (default 1000): a
 * value above 60 is surely that, and is refused rather than turned into a 1000 s wait.
 */
function secondsToMs(value: string): string {
  const s = Number(value);
  if (!Number.isFinite(s) || s <= 0)
    throw new ConfigError([
      `WORKER_POLL_INTERVAL: "${value}" is not a number of seconds (qlab's own WORKER_POLL_INTERVAL_MS takes ms)`,
    ]);
  if (s > 60)
    throw new ConfigError([
      `WORKER_POLL_INTERVAL: ${value} seconds is longer than a poll interval should be; it is read in seconds, as cl-server-shared documents it. For milliseconds set WORKER_POLL_INTERVAL_MS=${value}`,
    ]);
  return String(Math.max(10, Math.round(s * 1000)));
}

/**
 * MQTT_BROKER and MQTT_PORT (default 1883) as one URL. The seed documents a host name; an
 * `mqtt://` or `mqtts://` URL, `host:port` and an IPv6 address (bare or in brackets) are taken
 * too. Anything else (a path, credentials, a topic filter) is refused by name.
 */
function brokerUrl(_value: string, e: NodeJS.ProcessEnv): string {
  const raw = (e.MQTT_BROKER || 'localhost').trim();
  const bad = (why: string) => new ConfigError([`MQTT_BROKER: "${raw}" ${why}`]);
  let host = raw;
  let port = e.MQTT_PORT || '';
  let scheme = 'mqtt';
  const url = /^(mqtts?):\/\/(.*)$/i.exec(raw);
  if (url) {
    scheme = url[1]!.toLowerCase();
    host = url[2]!.replace(/\/$/, '');
  }
  const hostPort = /^(\[[0-9A-Fa-f:.]+\]|[^:[\]]+):(\d{1,5})$/.exec(host);
  if (hostPort) {
    host = hostPort[1]!;
    port ||= hostPort[2]!;
  }
  host = host.replace(/^\[(.*)\]$/, '$1');
  const ipv6 = host.includes(':');
  if (ipv6 ? !/^[0-9A-Fa-f:.]+$/.test(host) : !/^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})$/.test(host))
    throw bad('is not a broker host name, address or mqtt:// URL');
  port ||= scheme === 'mqtts' ? '8883' : '1883';
  if (!/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535)
    throw new ConfigError([`MQTT_PORT: "${port}" is not a port number`]);
  return `${scheme}://${ipv6 ? `[${host}]` : host}:${port}`;
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
    dataDir,
    storageDir: path.resolve(e.JOBS_STORAGE_DIR ?? dataDir),
    blobStoreUrl: e.BLOB_STORE_URL,
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
  JOBS_LEASE_MS: env.duration('30s', { min: 1000, max: MAX_LEASE_MS }),
  WORKER_SUPPORTED_TASKS: z.string().default('*'),
  WORKER_CONCURRENCY: env.int(1, 1),
  WORKER_POLL_INTERVAL_MS: env.duration('1s', { min: 10, max: MAX_POLL_MS }),
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
