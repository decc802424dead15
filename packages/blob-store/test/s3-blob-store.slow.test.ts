import net from 'node:net';
import { Readable } from 'node:stream';
import {
  openBlobStore,
  S3_CONNECT_TIMEOUT_MS,
  S3_IDLE_TIMEOUT_MS,
  S3BlobStore,
  s3ClientFromEnv,
} from '../src';
import { blobStoreContract } from './blob-store.contract';
import { type LocalS3, startLocalS3 } from './s3-server';

let s3: LocalS3;
let n = 0;
beforeAll(async () => {
  s3 = await startLocalS3();
});
afterAll(() => s3.close());

// Each test a prefix of its own in one bucket: the store sees only its prefix.
blobStoreContract('S3 (s3rver)', async () => s3.store(`run-${n++}`));

describe('the S3 blob store', () => {
  it('is what BLOB_STORE_URL=s3://bucket/prefix opens with the AWS variables', async () => {
    const store = await openBlobStore('s3://qlab-test/from-url', s3.env);
    expect(store.location).toBe('s3://qlab-test/from-url');
    await store.put('x.txt', Readable.from([Buffer.from('hello')]));
    expect((await s3.store('from-url').head('x.txt'))?.size).toBe(5);
  });

  it('aborts the multipart upload of a failed put: the server is told', async () => {
    // s3rver can neither list multipart uploads (NotImplemented) nor abort one (405), so the
    // client's own calls are recorded: the upload it created must be aborted, never completed.
    const client = s3ClientFromEnv(s3.env);
    const calls: string[] = [];
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const out = await next(args);
        calls.push(`${context.commandName} ${(out.response as { statusCode?: number }).statusCode}`);
        return out;
      },
      { step: 'deserialize', name: 'recordCalls' },
    );
    const store = new S3BlobStore(client, 'qlab-test', 'aborts');
    // The client goes away at 20 MiB, once a part has reached the server.
    let sent = 0;
    const body = new Readable({
      read() {
        if (sent < 20 * 1024 * 1024) {
          sent += 1024 * 1024;
          this.push(Buffer.alloc(1024 * 1024, 1));
          return;
        }
        const failOncePartStored = () => {
          if (calls.some((c) => c.startsWith('UploadPartCommand 200'))) this.destroy(new Error('gone'));
          else setTimeout(failOncePartStored, 10);
        };
        failOncePartStored();
      },
    });
    await expect(store.put('big.bin', body)).rejects.toThrow('gone');
    client.destroy();
    expect(calls).toContain('CreateMultipartUploadCommand 200');
    expect(calls.filter((c) => c.startsWith('AbortMultipartUploadCommand'))).toHaveLength(1);
    expect(calls.filter((c) => c.startsWith('CompleteMultipartUpload'))).toEqual([]);
    expect(await s3.store('aborts').head('big.bin')).toBeUndefined();
  });

  it('gives up on a server that stops answering, rather than hang its caller', async () => {
    // Accepts connections and never says a word (an S3 server stopped with SIGSTOP).
    const open: net.Socket[] = [];
    const silent = net.createServer((c) => open.push(c));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as net.AddressInfo).port;
    const env = { ...s3.env, AWS_ENDPOINT_URL_S3: `http://127.0.0.1:${port}` };
    try {
      const client = s3ClientFromEnv(env, {
        requestHandler: { connectionTimeout: 500, requestTimeout: 500, throwOnRequestTimeout: true },
        maxAttempts: 1,
      });
      const store = new S3BlobStore(client, 'qlab-test', 'silent');
      const t0 = Date.now();
      await expect(store.head('x.txt')).rejects.toThrow();
      await expect(store.put('x.txt', Readable.from([Buffer.from('hello')]))).rejects.toThrow();
      expect(Date.now() - t0).toBeLessThan(5000);
      // The defaults a deployment gets are set too.
      const config = s3ClientFromEnv(env).config as unknown as { requestHandler: unknown };
      expect(config.requestHandler).toBeDefined();
      expect([S3_CONNECT_TIMEOUT_MS, S3_IDLE_TIMEOUT_MS]).toEqual([5000, 30_000]);
    } finally {
      silent.close();
      // Its connections, which nobody else will close.
      for (const c of open) c.destroy();
    }
  });

  it('refuses URLs that are not a bucket, or that carry keys', async () => {
    for (const bad of [
      's3://Bad_Bucket/x',
      's3://user:secret@bucket/x',
      'http://bucket/x',
      'nonsense',
      's3://b/x?token=1',
    ])
      await expect(openBlobStore(bad, s3.env)).rejects.toThrow(/BLOB_STORE_URL/);
  });
});
