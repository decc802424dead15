export {
  type ArchiveItem,
  type ArchiveSelector,
  type BestRun,
  calibrationsDownload,
  calibrationsGetLatest,
  calibrationsList,
  calibrationsUpload,
  type DownloadedArchive,
  downloadArchive,
  getBestNRuns,
  getBestRun,
  type ListOptions,
  resultsDownload,
  resultsList,
  resultsUpload,
  type StreamDownloadOptions,
  setBestRun,
  type UploadOptions,
  type UploadResponse,
} from './calibrations';
export {
  type ClientConfig,
  clientConfigPath,
  DEFAULT_SERVER_URL,
  DEFAULT_UPLOAD_URL,
  readClientConfig,
  setServer,
  setUploadServer,
} from './config-file';
export { type ConnectionOptions, resolveConnection } from './connection';
export { QlabClientError } from './errors';
export { type ApiKeyInfo, createApiKey, type GatewayOptions, listApiKeys, revokeApiKey } from './keys';
export {
  createStorage,
  SQLiteStorage,
  type SQLiteStorageOptions,
  type Storage,
  type StoredData,
} from './storage/sqlite-storage';
export { unpack, unpackFile } from './unpack';
export { type BackoffPolicy, type Clock, DEFAULT_BACKOFF, realClock, retryDelay } from './uploads/backoff';
export type { BufferedFile, ChunkRow, ChunkStatus } from './uploads/chunk-store';
export { LOG_LEVELS, type LogLevel } from './uploads/client-log';
export {
  IndexedCPClient,
  type IndexedCPClientOptions,
  type UploadProgressEvent,
  type UploadSummary,
} from './uploads/indexedcp-client';
export { type TusUploadOptions, type TusUploadResult, tusUploadFile } from './uploads/tus-upload';
export { zipPaths } from './zip';
