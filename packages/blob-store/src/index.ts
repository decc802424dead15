export {
  assertBlobKey,
  type BlobInfo,
  type BlobStore,
  type ByteRange,
  MAX_KEY_BYTES,
} from './blob-store';
export { FileBlobStore } from './file-blob-store';
export { decodeKeyPath, encodeKeyPath } from './key-paths';
export { openBlobStore } from './open-blob-store';
export { S3_CONNECT_TIMEOUT_MS, S3_IDLE_TIMEOUT_MS, S3BlobStore, s3ClientFromEnv } from './s3-blob-store';
