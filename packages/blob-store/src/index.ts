export {
  assertBlobKey,
  type BlobInfo,
  type BlobStore,
  type ByteRange,
  MAX_KEY_BYTES,
} from './blob-store';
export { FileBlobStore } from './file-blob-store';
export { openBlobStore } from './open-blob-store';
export { S3BlobStore, s3ClientFromEnv } from './s3-blob-store';
