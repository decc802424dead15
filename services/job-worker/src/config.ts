import { hostname } from 'node:os';
import path from 'node:path';
import { baseEnv, env, loadConfig, logLevel, requireTokenOffLoopback } from '@qlab/kit';
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
  /** Task types the in-process worker pool runs ("" = none; "*" = every built-in). Default "*". */
  WORKER_SUPPORTED_TASKS: z.string().default('*'),
  WORKER_CONCURRENCY: env.int(2, 0),
  WORKER_POLL_INTERVAL: env.int(1000, 10),
  WORKER_ID: env.optionalString(),
  /** For calibration.publish. */
  CALIBRATION_STORE_URL: env.optionalString(),
  CALIBRATION_STORE_TOKEN: env.optionalString(),
});

export type ServerConfig = ReturnType<typeof loadServerConfig>;

export function loadServerConfig(environment: NodeJS.ProcessEnv = process.env) {
  const e = loadConfig(serverEnv, environment);
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
    worker: workerSettings(e),
    calibrationStore: { url: e.CALIBRATION_STORE_URL, token: e.CALIBRATION_STORE_TOKEN },
  };
}

function workerSettings(e: {
  WORKER_SUPPORTED_TASKS: string;
  WORKER_CONCURRENCY: number;
  WORKER_POLL_INTERVAL: number;
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
    pollIntervalMs: e.WORKER_POLL_INTERVAL,
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
  WORKER_POLL_INTERVAL: env.int(1000, 10),
  WORKER_ID: env.optionalString(),
  CALIBRATION_STORE_URL: env.optionalString(),
  CALIBRATION_STORE_TOKEN: env.optionalString(),
  LOG_LEVEL: logLevel(),
});

export function loadRemoteWorkerConfig(environment: NodeJS.ProcessEnv = process.env) {
  const e = loadConfig(remoteWorkerEnv, environment);
  return {
    jobsUrl: e.JOBS_URL,
    token: e.JOBS_API_TOKEN,
    leaseMs: e.JOBS_LEASE_MS,
    logLevel: e.LOG_LEVEL,
    worker: workerSettings(e),
    calibrationStore: { url: e.CALIBRATION_STORE_URL, token: e.CALIBRATION_STORE_TOKEN },
  };
}
