import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { baseEnv, ConfigError, env, loadConfig, requireTokenOffLoopback } from '@qlab/kit';
import { z } from 'zod';

const MB = 1024 * 1024;

/** Environment variables; the QIBO_* names are the seed server's and mean the same. */
export const envSchema = z.object({
  ...baseEnv(5050),
  /** SQLAlchemy-style URL: sqlite:///file.db, sqlite:////abs/file.db or postgresql://… Default: DATA_DIR/calibration-store/qibo.db */
  QIBO_DB_URI: env.optionalString(),
  /** When set, every API route needs `Authorization: Bearer <token>`. */
  QIBO_API_TOKEN: env.optionalString(),
  /** Token allowed to delete archives. Default: QIBO_API_TOKEN. */
  QIBO_ADMIN_TOKEN: env.optionalString(),
  /** Largest accepted upload in bytes (413 above). Default 500 MiB. */
  QIBO_MAX_UPLOAD_BYTES: env.int(500 * MB, 1),
  /** Largest archive the JSON download (data_b64) returns; bigger ones must use the streaming endpoint. Default 100 MiB. */
  QIBO_JSON_DOWNLOAD_MAX_BYTES: env.int(100 * MB, 0),
  /** Debug logging. */
  QIBO_DEBUG: env.bool(false),
  /** Where `--api-token` is remembered. Default ~/.qibo_server.json. */
  QIBO_SERVER_CONFIG: env.optionalString(),
  /** MQTT broker for events; events are off when unset. */
  MQTT_URL: env.optionalString(),
  /** Where archive bytes live: file:///path or s3://bucket/prefix (with the AWS SDK's variables). Default: DATA_DIR/calibration-store */
  BLOB_STORE_URL: env.optionalString(),
});

export interface Config {
  host: string;
  port: number;
  /** This service's folder under DATA_DIR. */
  dataDir: string;
  dbUrl: string;
  apiToken?: string;
  adminToken?: string;
  maxUploadBytes: number;
  jsonDownloadMaxBytes: number;
  logLevel: z.infer<typeof envSchema>['LOG_LEVEL'];
  mqttUrl?: string;
  /** file:///… (default: dataDir) or s3://bucket/prefix. */
  blobStoreUrl: string;
}

export const USAGE = `usage: calibration-store [--host HOST] [--port PORT] [--api-token TOKEN]

  --host        address to listen on (env HOST, default 127.0.0.1)
  --port        port to listen on (env PORT, default 5050)
  --api-token   require this bearer token; remembered in ~/.qibo_server.json (env QIBO_API_TOKEN)`;

function parseFlags(argv: string[]) {
  try {
    return parseArgs({
      args: argv,
      options: {
        host: { type: 'string' },
        port: { type: 'string' },
        'api-token': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (err) {
    throw new ConfigError([`${(err as Error).message}\n${USAGE}`]);
  }
}

/** The seed's token persistence: `--api-token` is written here and read back on later starts. */
export function tokenFilePath(envFile: string | undefined): string {
  return envFile ?? path.join(homedir(), '.qibo_server.json');
}

function readPersistedToken(file: string): string | undefined {
  if (!existsSync(file)) return undefined;
  try {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as { api_token?: unknown };
    return typeof parsed.api_token === 'string' && parsed.api_token !== '' ? parsed.api_token : undefined;
  } catch (err) {
    throw new ConfigError([`${file}: not valid JSON (${(err as Error).message})`]);
  }
}

function persistToken(file: string, token: string): void {
  writeFileSync(file, `${JSON.stringify({ api_token: token }, null, 2)}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
}

/** Flags win over env; env wins over the persisted token. Returns undefined for --help. */
export function loadCalibrationConfig(argv: string[], environment: NodeJS.ProcessEnv): Config | undefined {
  const flags = parseFlags(argv);
  if (flags.help) return undefined;
  const merged = { ...environment };
  if (flags.host !== undefined) merged.HOST = flags.host;
  if (flags.port !== undefined) merged.PORT = flags.port;
  const e = loadConfig(envSchema, merged);

  const tokenFile = tokenFilePath(e.QIBO_SERVER_CONFIG);
  const flagToken = flags['api-token'];
  if (flagToken !== undefined && flagToken !== '') persistToken(tokenFile, flagToken);
  const apiToken = flagToken || e.QIBO_API_TOKEN || readPersistedToken(tokenFile);

  requireTokenOffLoopback(e.HOST, apiToken, 'QIBO_API_TOKEN');
  const dataDir = path.resolve(e.DATA_DIR, 'calibration-store');
  return {
    host: e.HOST,
    port: e.PORT,
    dataDir,
    dbUrl: e.QIBO_DB_URI ?? path.join(dataDir, 'qibo.db'),
    blobStoreUrl: e.BLOB_STORE_URL ?? pathToFileURL(dataDir).href,
    apiToken,
    adminToken: e.QIBO_ADMIN_TOKEN ?? apiToken,
    maxUploadBytes: e.QIBO_MAX_UPLOAD_BYTES,
    jsonDownloadMaxBytes: e.QIBO_JSON_DOWNLOAD_MAX_BYTES,
    logLevel: e.QIBO_DEBUG ? 'debug' : e.LOG_LEVEL,
    mqttUrl: e.MQTT_URL,
  };
}
