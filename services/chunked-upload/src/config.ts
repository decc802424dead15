import path from 'node:path';
import { baseEnv, env, loadConfig, requireTokenOffLoopback } from '@qlab/kit';
import { z } from 'zod';
import { PATH_MODES, type PathMode } from './domain/path-modes';

const GiB = 1024 * 1024 * 1024;

export const envSchema = z.object({
  ...baseEnv(3000),
  /** Where finished files land. Default DATA_DIR/chunked-upload/files. */
  UPLOAD_DIR: env.optionalString(),
  /** Comma-separated API keys for `Authorization: Bearer`. Unset (and no UPLOAD_GATEWAY_TOKEN): one is generated and kept in the data dir. */
  UPLOAD_API_KEYS: env.optionalString(),
  /**
   * The token the gateway sends (its CHUNKED_UPLOAD_TOKEN). Requests with it name their caller in
   * X-Qlab-Key-Id, and each caller sees only its own uploads.
   */
  UPLOAD_GATEWAY_TOKEN: env.optionalString(),
  /** ignore (default) | sanitize | allow-paths */
  UPLOAD_PATH_MODE: z.enum(PATH_MODES as [PathMode, ...PathMode[]]).default('ignore'),
  /** Also refuse names only Windows forbids (CON, NUL.txt, <>:"|?*, trailing dot or space). Default false, as the original. */
  UPLOAD_WINDOWS_SAFE_NAMES: env.bool(false),
  /** Largest upload in bytes (413 above it). Default 10 GiB. */
  UPLOAD_MAX_BYTES: env.int(10 * GiB, 1),
  /** Sessions database: SQLite file (default DATA_DIR/chunked-upload/uploads.db) or postgres://… */
  UPLOAD_DB_URL: env.optionalString(),
  /** Unfinished uploads one key may hold at once (429 above). Default 100. */
  UPLOAD_MAX_SESSIONS_PER_KEY: env.int(100, 1),
  /** Bytes one key's unfinished uploads may declare together (429 above). Default 100 GiB. */
  UPLOAD_MAX_OPEN_BYTES_PER_KEY: env.int(100 * GiB, 1),
  /** Unfinished uploads untouched this long expire and are removed. Default 24h. */
  UPLOAD_EXPIRE_AFTER: env.duration('24h'),
  /**
   * An IndexedCP upload without X-Chunk-Total is complete once no chunk came for this long.
   * Default 90s: above the original client's longest retry wait (maxRetryDelay, 60 s).
   */
  UPLOAD_IDLE_COMPLETE_AFTER: env.duration('90s'),
  /** Write upload bytes with O_DIRECT where the file system takes it (falls back by itself). Default true. */
  UPLOAD_DIRECT_IO: env.bool(true),
  /** IndexedCP's encrypted uploads: GET /public-key, POST /upload-encrypted[-batch], POST /rotate-keys. Default false. */
  UPLOAD_ENCRYPTION: env.bool(false),
  /** The server's RSA key pairs, one <kid>.json each (the original's server-keys/ format). Default DATA_DIR/chunked-upload/keys. */
  UPLOAD_ENCRYPTION_KEYS_DIR: env.optionalString(),
  /** RSA modulus of new key pairs. Default 4096, as the original. */
  UPLOAD_ENCRYPTION_KEY_BITS: z.coerce.number().int().min(2048).max(8192).default(4096),
  /** Key pairs older than this are deleted (the active one never). Default 90d. */
  UPLOAD_ENCRYPTION_MAX_KEY_AGE: env.duration('90d'),
  /**
   * Upload bytes in a blob store instead of DATA_DIR and UPLOAD_DIR: `s3://bucket/prefix` (the AWS
   * SDK's variables) or `file:///shared/folder`. With UPLOAD_DB_URL on PostgreSQL, any number of
   * replicas then serve any upload.
   */
  BLOB_STORE_URL: env.optionalString(),
  MQTT_URL: env.optionalString(),
});

export interface Config {
  host: string;
  port: number;
  dataDir: string;
  uploadDir: string;
  /** Upload bytes in this blob store (replicas), not in dataDir/uploadDir. */
  blobStoreUrl?: string;
  apiKeys: string[] | undefined;
  gatewayToken?: string;
  pathMode: PathMode;
  windowsSafeNames: boolean;
  maxBytes: number;
  maxSessionsPerKey: number;
  maxOpenBytesPerKey: number;
  dbUrl: string;
  expireAfterMs: number;
  idleCompleteAfterMs: number;
  directIo: boolean;
  encryption?: { keysDir: string; keyBits: number; maxKeyAgeMs: number };
  mqttUrl?: string;
  logLevel: z.infer<typeof envSchema>['LOG_LEVEL'];
}

export function loadUploadConfig(environment: NodeJS.ProcessEnv = process.env): Config {
  const e = loadConfig(envSchema, environment);
  const dataDir = path.resolve(e.DATA_DIR, 'chunked-upload');
  const keys = e.UPLOAD_API_KEYS?.split(',')
    .map((k) => k.trim())
    .filter(Boolean);
  requireTokenOffLoopback(
    e.HOST,
    e.UPLOAD_GATEWAY_TOKEN ?? (keys && keys.length > 0 ? 'keys' : undefined),
    'UPLOAD_GATEWAY_TOKEN (or UPLOAD_API_KEYS)',
  );
  return {
    host: e.HOST,
    port: e.PORT,
    dataDir,
    uploadDir: path.resolve(e.UPLOAD_DIR ?? path.join(dataDir, 'files')),
    blobStoreUrl: e.BLOB_STORE_URL,
    apiKeys: keys && keys.length > 0 ? keys : undefined,
    gatewayToken: e.UPLOAD_GATEWAY_TOKEN,
    pathMode: e.UPLOAD_PATH_MODE,
    windowsSafeNames: e.UPLOAD_WINDOWS_SAFE_NAMES,
    maxBytes: e.UPLOAD_MAX_BYTES,
    maxSessionsPerKey: e.UPLOAD_MAX_SESSIONS_PER_KEY,
    maxOpenBytesPerKey: e.UPLOAD_MAX_OPEN_BYTES_PER_KEY,
    dbUrl: e.UPLOAD_DB_URL ?? path.join(dataDir, 'uploads.db'),
    expireAfterMs: e.UPLOAD_EXPIRE_AFTER,
    idleCompleteAfterMs: e.UPLOAD_IDLE_COMPLETE_AFTER,
    directIo: e.UPLOAD_DIRECT_IO,
    encryption: e.UPLOAD_ENCRYPTION
      ? {
          keysDir: path.resolve(e.UPLOAD_ENCRYPTION_KEYS_DIR ?? path.join(dataDir, 'keys')),
          keyBits: e.UPLOAD_ENCRYPTION_KEY_BITS,
          maxKeyAgeMs: e.UPLOAD_ENCRYPTION_MAX_KEY_AGE,
        }
      : undefined,
    mqttUrl: e.MQTT_URL,
    logLevel: e.LOG_LEVEL,
  };
}
