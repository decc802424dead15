export {
  type ArchiveItem,
  type ArchiveSelector,
  calibrationsDownload,
  calibrationsGetLatest,
  calibrationsList,
  calibrationsUpload,
  type DownloadedArchive,
  downloadArchive,
  type ListOptions,
  resultsDownload,
  resultsList,
  resultsUpload,
  type StreamDownloadOptions,
  type UploadOptions,
  type UploadResponse,
} from './calibrations';
export {
  type ClientConfig,
  clientConfigPath,
  DEFAULT_SERVER_URL,
  readClientConfig,
  setServer,
} from './config-file';
export { type ConnectionOptions, resolveConnection } from './connection';
export { QlabClientError } from './errors';
export { unpack, unpackFile } from './unpack';
export { zipPaths } from './zip';
