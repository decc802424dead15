export { ConfigError, baseEnv, env, loadConfig } from './config';
export { type DbTarget, type Knex, type Migration, isPostgres, openDatabase, parseDbUrl } from './db';
export {
  AppError,
  type ProblemDocument,
  badRequest,
  coerceError,
  conflict,
  forbidden,
  notFound,
  payloadTooLarge,
  problem,
  problemErrorHandler,
  rangeNotSatisfiable,
  sendProblem,
  serviceUnavailable,
  titleFor,
  unauthorized,
  unprocessable,
  unsupportedMediaType,
} from './errors';
export { createServiceApp, type ServiceApp, type ServiceAppOptions } from './http-app';
export { Lifecycle, stopOnSignals } from './lifecycle';
export { type Listening, type ListenOptions, listen } from './listen';
export { createLogger, type Logger, silentLogger } from './logger';
export { createMetrics, type Metrics } from './metrics';
export { type OpenApiDocument, problemResponse, problemSchema, withKitPaths } from './openapi';
export { parseInput } from './validate';
export { bearerAuth, constantTimeEqual } from './auth';
