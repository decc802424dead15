import { open, rm } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import {
  assertBlobKey,
  assertBlobPrefix,
  assertRange,
  type BlobInfo,
  type BlobStore,
  type ByteRange,
} from './blob-store';

/** Multipart part size and parts in flight: memory per put is about their product (32 MiB). */
const PART_SIZE = 8 * 1024 * 1024;
const QUEUE_SIZE = 4;

function isMissing(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === 'NoSuchKey' || e?.name === 'NotFound' || e?.$metadata?.httpStatusCode === 404;
}

/**
 * Objects in an S3 bucket under a prefix (`s3://bucket/prefix`), through the AWS SDK. A put is
 * one multipart upload (@aws-sdk/lib-storage: 8 MiB parts, 4 in flight), aborted when the body
 * fails, so S3 never shows part of it; a single-part body is one PutObject.
 */
export class S3BlobStore implements BlobStore {
  readonly location: string;

  constructor(
    private readonly client: S3Client,
    private readonly bucket: string,
    private readonly prefix: string,
  ) {
    if (prefix) assertBlobKey(prefix);
    this.location = `s3://${bucket}${prefix ? `/${prefix}` : ''}`;
  }

  private objectKey(key: string): string {
    assertBlobKey(key);
    return this.prefix ? `${this.prefix}/${key}` : key;
  }

  async put(key: string, body: Readable, options: { contentType?: string } = {}): Promise<BlobInfo> {
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key: this.objectKey(key), Body: body, ContentType: options.contentType },
      partSize: PART_SIZE,
      queueSize: QUEUE_SIZE,
      leavePartsOnError: false,
    });
    // A body that fails mid-way must fail the upload: lib-storage is told to abort, and done()
    // settles only once it has aborted the multipart upload, so no parts are left behind.
    let bodyError: unknown;
    const onError = (err: unknown) => {
      bodyError ??= err;
      upload.abort().catch(() => undefined);
    };
    body.once('error', onError);
    try {
      await upload.done();
    } catch (err) {
      await this.abortMultipart(key, upload);
      throw bodyError ?? err;
    } finally {
      body.off('error', onError);
    }
    if (bodyError) {
      await this.abortMultipart(key, upload);
      throw bodyError;
    }
    return (await this.head(key))!;
  }

  async moveFile(key: string, file: string, options: { contentType?: string } = {}): Promise<BlobInfo> {
    this.objectKey(key);
    // Opened first, so a missing file is refused before any upload is created.
    const handle = await open(file, 'r');
    const info = await this.put(key, handle.createReadStream(), options);
    await rm(file, { force: true });
    return info;
  }

  /**
   * lib-storage's abort stops its part uploads but leaves a multipart upload it had created open
   * on the server (found by the contract test: parts stay stored, and billed, until a lifecycle
   * rule removes them), so it is aborted here, by the id lib-storage holds.
   */
  private async abortMultipart(key: string, upload: Upload): Promise<void> {
    const uploadId = (upload as unknown as { uploadId?: string }).uploadId;
    if (!uploadId) return;
    await this.client
      .send(
        new AbortMultipartUploadCommand({
          Bucket: this.bucket,
          Key: this.objectKey(key),
          UploadId: uploadId,
        }),
      )
      .catch(() => undefined);
  }

  async get(key: string, range?: ByteRange): Promise<Readable | undefined> {
    if (range) assertRange(range);
    try {
      const res = await this.client.send(
        new GetObjectCommand({
          Bucket: this.bucket,
          Key: this.objectKey(key),
          Range: range ? `bytes=${range.start}-${range.end ?? ''}` : undefined,
        }),
      );
      return res.Body as Readable;
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
  }

  async head(key: string): Promise<BlobInfo | undefined> {
    try {
      const res = await this.client.send(
        new HeadObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }),
      );
      return { key, size: Number(res.ContentLength ?? 0), modified: res.LastModified ?? new Date(0) };
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
  }

  async delete(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }));
  }

  async *list(prefix = ''): AsyncIterable<BlobInfo> {
    assertBlobPrefix(prefix);
    const base = this.prefix ? `${this.prefix}/` : '';
    let token: string | undefined;
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({
          Bucket: this.bucket,
          Prefix: `${base}${prefix}`,
          ContinuationToken: token,
        }),
      );
      for (const o of page.Contents ?? [])
        if (o.Key)
          yield {
            key: o.Key.slice(base.length),
            size: Number(o.Size ?? 0),
            modified: o.LastModified ?? new Date(0),
          };
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }
}

/**
 * The S3 client as the AWS SDK configures itself (credentials, region and endpoint from
 * AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL),
 * plus S3_FORCE_PATH_STYLE=true for MinIO-style servers. Checksums are sent only where S3
 * requires them, which every S3-compatible server accepts.
 */
/** Connecting to the S3 server may take this long... */
export const S3_CONNECT_TIMEOUT_MS = 5000;
/** ...and a request this long without a byte either way. */
export const S3_IDLE_TIMEOUT_MS = 30_000;

export function s3ClientFromEnv(env: NodeJS.ProcessEnv = process.env, extra: S3ClientConfig = {}): S3Client {
  const endpoint = env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || undefined;
  // Keys in the given environment; without them the SDK's own chain (profiles, instance roles).
  const credentials =
    env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY
      ? {
          accessKeyId: env.AWS_ACCESS_KEY_ID,
          secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
          ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}),
        }
      : undefined;
  return new S3Client({
    ...(credentials ? { credentials } : {}),
    region: env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1',
    ...(endpoint ? { endpoint } : {}),
    forcePathStyle: env.S3_FORCE_PATH_STYLE === 'true',
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // Without these a server that stops answering holds a request (and whatever the caller
    // holds meanwhile: a database transaction, a lock) for ever. The request timeout is of
    // inactivity: a long transfer that keeps moving is never cut.
    // (throwOnRequestTimeout: this SDK only warns past requestTimeout without it.)
    requestHandler: {
      connectionTimeout: S3_CONNECT_TIMEOUT_MS,
      requestTimeout: S3_IDLE_TIMEOUT_MS,
      throwOnRequestTimeout: true,
    },
    ...extra,
  });
}
