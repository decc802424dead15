/**
 * One big tus PATCH into a replica on PostgreSQL and S3, against the same into local files, in
 * one run: throughput, and the replica's memory (its RSS, sampled from /proc) while the bytes
 * stream through to S3 parts. Issue 18: "Memory stays flat for a 1 GiB upload through S3."
 *
 *   QLAB_TEST_PG_URL=postgres://postgres@127.0.0.1:5432/test pnpm --filter chunked-upload bench:replica
 *   (BENCH_MB=1024)
 *
 * The S3 server is s3rver (from the tests), which writes each part to its own disk: the S3
 * figure is a floor, not what MinIO or AWS would give.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { startLocalS3 } from '@qlab/blob-store/testing';
import { pgSchemaUrl, tempDir } from '@qlab/testkit';

const MiB = 1024 * 1024;
const SIZE = Number(process.env.BENCH_MB ?? 1024) * MiB;
const KEY = 'bench-key-0123456789';
const pgUrl = process.env.QLAB_TEST_PG_URL;

const rssMb = (pid: number) => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
};

async function start(env: NodeJS.ProcessEnv): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, [path.join(__dirname, '..', 'dist', 'main.js')], {
    env: { ...process.env, ...env, HOST: '127.0.0.1', PORT: '0', UPLOAD_API_KEYS: KEY, LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /"url":"(http:\/\/[^"]+)"[^\n]*chunked-upload listening/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.once('exit', (code) => reject(new Error(`service exited (${code}):\n${out}`)));
  });
  return { url, child };
}

function request(url: string, method: string, headers: Record<string, string>, body?: () => Promise<void>) {
  return new Promise<http.IncomingMessage>((resolve, reject) => {
    const req = http.request(url, {
      method,
      headers: { Authorization: `Bearer ${KEY}`, 'Tus-Resumable': '1.0.0', ...headers },
    });
    req.on('response', (res) => {
      res.resume();
      resolve(res);
    });
    req.on('error', reject);
    if (!body) req.end();
    else {
      const piece = randomBytes(4 * MiB);
      (async () => {
        for (let sent = 0; sent < SIZE; sent += piece.length) {
          if (!req.write(piece.subarray(0, Math.min(piece.length, SIZE - sent))))
            await new Promise((r) => req.once('drain', r));
        }
        req.end();
      })().catch(reject);
    }
  });
}

async function run(name: string, env: NodeJS.ProcessEnv) {
  const { url, child } = await start(env);
  try {
    const created = await request(`${url}/files`, 'POST', {
      'Upload-Length': String(SIZE),
      'Upload-Metadata': `filename ${Buffer.from(`${name}.bin`).toString('base64')}`,
    });
    const location = new URL(created.headers.location!, url).href;
    const before = rssMb(child.pid!);
    let peak = before;
    const sampler = setInterval(() => {
      peak = Math.max(peak, rssMb(child.pid!));
    }, 50);
    const t0 = process.hrtime.bigint();
    const res = await request(
      location,
      'PATCH',
      {
        'Upload-Offset': '0',
        'Content-Type': 'application/offset+octet-stream',
        'Content-Length': String(SIZE),
      },
      async () => undefined,
    );
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    clearInterval(sampler);
    if (res.statusCode !== 204) throw new Error(`${name}: PATCH answered ${res.statusCode}`);
    return { name, mbps: SIZE / MiB / s, rssBefore: before, rssPeak: peak };
  } finally {
    child.kill('SIGTERM');
  }
}

async function main() {
  if (!pgUrl) throw new Error('set QLAB_TEST_PG_URL (the replica keeps its sessions in PostgreSQL)');
  const tmp = tempDir('qlab-replica-bench-');
  const s3 = await startLocalS3('qlab-bench');
  try {
    const files = await run('files', { DATA_DIR: path.join(tmp.dir, 'files') });
    const replica = await run('s3', {
      ...s3.env,
      DATA_DIR: path.join(tmp.dir, 's3'),
      UPLOAD_DB_URL: pgSchemaUrl(pgUrl).url,
      BLOB_STORE_URL: 's3://qlab-bench/bench',
    });
    console.log(`one ${SIZE / MiB} MiB tus PATCH`);
    for (const r of [files, replica])
      console.log(
        `  ${r.name.padEnd(6)} ${r.mbps.toFixed(0).padStart(5)} MB/s   RSS ${r.rssBefore.toFixed(0)} MB → peak ${r.rssPeak.toFixed(0)} MB (+${(r.rssPeak - r.rssBefore).toFixed(0)} MB)`,
      );
    console.log(`  s3/files throughput ratio ${(replica.mbps / files.mbps).toFixed(2)}`);
  } finally {
    await s3.close();
    tmp.cleanup();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
