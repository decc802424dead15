import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BlobStore } from './blob-store';
import { FileBlobStore } from './file-blob-store';
import { S3BlobStore, s3ClientFromEnv } from './s3-blob-store';

/**
 * The store BLOB_STORE_URL names: `file:///path` (the default is a folder under DATA_DIR) or
 * `s3://bucket/prefix` (the S3 client from the AWS SDK's own variables: s3ClientFromEnv).
 */
export async function openBlobStore(url: string, env: NodeJS.ProcessEnv = process.env): Promise<BlobStore> {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`BLOB_STORE_URL must be file:///path or s3://bucket/prefix, not ${JSON.stringify(url)}`);
  }
  if (u.protocol === 'file:') return FileBlobStore.open(path.resolve(fileURLToPath(u)));
  if (u.protocol === 's3:') {
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(u.hostname))
      throw new Error(`BLOB_STORE_URL: ${JSON.stringify(u.hostname)} is not an S3 bucket name`);
    if (u.username || u.password || u.search || u.hash)
      throw new Error('BLOB_STORE_URL: keys go in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, not the URL');
    const prefix = decodeURIComponent(u.pathname).replace(/^\/+|\/+$/g, '');
    return new S3BlobStore(s3ClientFromEnv(env), u.hostname, prefix);
  }
  throw new Error(`BLOB_STORE_URL must be file:///path or s3://bucket/prefix, not ${u.protocol}`);
}
