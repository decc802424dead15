export {
  bearerAuth,
  bearerToken,
  CALLER_KEY_ID_HEADER,
  CALLER_SCOPES_HEADER,
  constantTimeEqual,
  isOpenRequest,
} from './auth';
export {
  baseEnv,
  ConfigError,
  env,
  isLoopback,
  loadConfig,
  logLevel,
  requireTokenOffLoopback,
} from './config';
export {
  type DbTarget,
  deploymentScope,
  isPostgres,
  type Knex,
  type Migration,
  openDatabase,
  parseDbUrl,
  pgConnectionString,
} from './db';
export {
  AppError,
  afterBody,
  badRequest,
  coerceError,
  conflict,
  forbidden,
  isStoreOutage,
  lingerOnBody,
  notFound,
  type ProblemDocument,
  payloadTooLarge,
  problem,
  problemErrorHandler,
  rangeNotSatisfiable,
  refuseUpgrade,
  sendProblem,
  sendRawProblem,
  serviceUnavailable,
  titleFor,
  unauthorized,
  unprocessable,
  unsupportedMediaType,
} from './errors';
export { createServiceApp, type ServiceApp, type ServiceAppOptions, serviceRouter } from './http-app';
export {
  IDEMPOTENCY_TTL_MS,
  IdempotencyKeys,
  type IdempotencyRequest,
  idempotencyKeysIndexMigration,
  idempotencyKeysMigration,
  idempotencyOf,
  idempotentResultGone,
  sweepExpiredKeys,
  sweepExpiredKeysEvery,
} from './idempotency-keys';
export {
  decodeUtf8,
  formBody,
  jsonBody,
  jsonNestsDeeperThan,
  MAX_JSON_DEPTH,
  ndjsonNestsDeeperThan,
  parseJsonStrict,
} from './json-body';
export { Lifecycle, stopOnSignals } from './lifecycle';
export { type Listening, type ListenOptions, listen } from './listen';
export { createLogger, type Logger, silentLogger } from './logger';
export { createMetrics, type Metrics } from './metrics';
export { type MultipartFile, type MultipartLimits, receiveMultipart } from './multipart';
export { type OpenApiDocument, problemResponse, problemSchema, withKitPaths } from './openapi';
export { lockIdOf, PgLeadership, type PgLeadershipOptions } from './pg-leader';
export { listenPg, type PgListener, type PgListenOptions } from './pg-listen';
export { privateDir, privateFiles } from './private-files';
export { publicUrl } from './public-url';
export { canonicalTarget, effectiveMethod, isCorsPreflight } from './request-target';
export { runMain } from './run-main';
export { applySeedAliases, type SeedAlias, unreadSettings } from './seed-settings';
export { sleep, withTimeout } from './timeouts';
export { parseInput } from './validate';
