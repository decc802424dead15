/**
 * A local S3-compatible server for the tests (s3rver: S3's REST API on the filesystem; test code
 * only) in a process of its own on port 0, with a bucket, and stores reaching it through the
 * variables a lab would set for MinIO or another S3-compatible server.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { tempDir } from '@qlab/testkit';
import { S3BlobStore, s3ClientFromEnv } from '../src';

export interface LocalS3 {
  env: NodeJS.ProcessEnv;
  store(prefix?: string): S3BlobStore;
  close(): Promise<void>;
}

export async function startLocalS3(bucket = 'qlab-test'): Promise<LocalS3> {
  const tmp = tempDir('qlab-s3rver-');
  const child: ChildProcess = spawn(
    process.execPath,
    ['--openssl-legacy-provider', path.join(__dirname, 's3rver-main.cjs'), tmp.dir, bucket],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /port (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`s3rver exited (${code}) before listening`)));
  });
  const env: NodeJS.ProcessEnv = {
    AWS_ENDPOINT_URL_S3: `http://127.0.0.1:${port}`,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'S3RVER',
    AWS_SECRET_ACCESS_KEY: 'S3RVER',
    S3_FORCE_PATH_STYLE: 'true',
  };
  const clients: { destroy(): void }[] = [];
  return {
    env,
    store(prefix = '') {
      const client = s3ClientFromEnv(env);
      clients.push(client);
      return new S3BlobStore(client, bucket, prefix);
    },
    async close() {
      for (const c of clients) c.destroy();
      await new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      });
      tmp.cleanup();
    },
  };
}
