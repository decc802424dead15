/**
 * Two chunked-upload replicas on one PostgreSQL schema and one S3 bucket (issue 18,
 * "chunked-upload"): any replica continues any upload. A tus upload whose PATCHes alternate
 * between them, with one replica SIGKILLed mid-PATCH, completes byte-identical; a PATCH on one
 * replica takes over a stalled writer on the other; IndexedCP chunks alternate too.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import path from 'node:path';
import { type LocalS3, startLocalS3 } from '@qlab/blob-store/testing';
import { pgSchemaUrl, pgTestUrl, tempDir, waitFor } from '@qlab/testkit';
import * as tusClient from 'tus-js-client';

const pgUrl = pgTestUrl('chunked-upload replicas');
const KEY = 'replica-key-0123456789';
const MiB = 1024 * 1024;

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

(pgUrl ? describe : describe.skip)('two chunked-upload replicas on PostgreSQL and S3', () => {
  const tmp = tempDir('qlab-up-replicas-');
  let s3: LocalS3;
  let schemaUrl: string;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    s3 = await startLocalS3('qlab-uploads');
    ({ url: schemaUrl } = pgSchemaUrl(pgUrl!));
  }, 60_000);
  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    await s3.close();
    tmp.cleanup();
  });

  /** A replica as production runs it: its own process, from the build. */
  async function replica(name: string): Promise<{ url: string; process: ChildProcess }> {
    const p = spawn(process.execPath, [path.join(__dirname, '..', 'dist', 'main.js')], {
      env: {
        ...process.env,
        ...s3.env,
        HOST: '127.0.0.1',
        PORT: '0',
        DATA_DIR: path.join(tmp.dir, name),
        UPLOAD_DB_URL: schemaUrl,
        BLOB_STORE_URL: 's3://qlab-uploads/lab',
        UPLOAD_API_KEYS: KEY,
        UPLOAD_PATH_MODE: 'sanitize',
        LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(p);
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      p.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /"url":"(http:\/\/[^"]+)"[^\n]*chunked-upload listening/.exec(out);
        if (m) resolve(m[1]!);
      });
      p.once('exit', (code) => reject(new Error(`replica exited (${code}) before listening:\n${out}`)));
    });
    // What a replica said before it ended, when it was not killed on purpose.
    let tail = '';
    p.stdout!.on('data', (d: Buffer) => {
      tail = (tail + d.toString()).slice(-4000);
    });
    p.once('exit', (code) => {
      if (code !== null) process.stdout.write(`replica ${name} exited (${code}):\n${tail}\n`);
    });
    return { url, process: p };
  }

  const headers = { Authorization: `Bearer ${KEY}`, 'Tus-Resumable': '1.0.0' };
  const create = async (url: string, length: number, filename: string) => {
    const res = await fetch(`${url}/files`, {
      method: 'POST',
      headers: {
        ...headers,
        'Upload-Length': String(length),
        'Upload-Metadata': `filename ${Buffer.from(filename).toString('base64')}`,
      },
    });
    expect(res.status).toBe(201);
    return new URL(res.headers.get('location')!).pathname;
  };
  const head = async (url: string, file: string) => {
    const res = await fetch(`${url}${file}`, { method: 'HEAD', headers });
    expect(res.status).toBe(200);
    return Number(res.headers.get('upload-offset'));
  };
  /**
   * A PATCH of `length` bytes: its status, or 'dropped' when the connection went first (a
   * refusal may close it before the body is sent; a killed replica always does).
   */
  function openPatch(url: string, file: string, offset: number, length: number) {
    const u = new URL(`${url}${file}`);
    const req = http.request({
      host: u.hostname,
      port: u.port,
      path: u.pathname,
      method: 'PATCH',
      headers: {
        ...headers,
        'Upload-Offset': String(offset),
        'Content-Type': 'application/offset+octet-stream',
        'Content-Length': String(length),
      },
    });
    const answered = new Promise<number | 'dropped'>((resolve) => {
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', () => resolve('dropped'));
    });
    return { req, answered };
  }
  const patch = async (url: string, file: string, offset: number, body: Buffer) => {
    const { req, answered } = openPatch(url, file, offset, body.length);
    req.end(body);
    return { status: await answered };
  };
  /** A PATCH whose body stops after `sent` (a quarter of it) and waits; `abort()` drops the connection. */
  function stalledPatch(url: string, file: string, offset: number, sent: Buffer) {
    const { req, answered } = openPatch(url, file, offset, sent.length * 4);
    req.write(sent);
    return { answered, abort: () => req.destroy() };
  }

  /** The finished object in the bucket. */
  async function stored(name: string): Promise<Buffer> {
    const body = await s3.store('lab').get(`files/${name}`);
    expect(body).toBeDefined();
    const parts: Buffer[] = [];
    for await (const p of body!) parts.push(p as Buffer);
    return Buffer.concat(parts);
  }
  const staging = async () => {
    const keys: string[] = [];
    for await (const o of s3.store('lab').list('staging/')) keys.push(o.key);
    return keys;
  };

  it('completes byte-identical a tus upload alternating between replicas, one SIGKILLed mid-PATCH', async () => {
    let a = await replica('a');
    const b = await replica('b');
    const data = randomBytes(20 * MiB);
    const file = await create(a.url, data.length, 'alternating.bin');

    expect((await patch(b.url, file, 0, data.subarray(0, 6 * MiB))).status).toBe(204);
    expect(await head(a.url, file)).toBe(6 * MiB);

    // A takes the next PATCH, has 3 MiB of it, and is killed without a word.
    const cut = stalledPatch(a.url, file, 6 * MiB, data.subarray(6 * MiB, 9 * MiB));
    await new Promise((r) => setTimeout(r, 500));
    a.process.kill('SIGKILL');
    expect(await cut.answered).toBe('dropped');
    // Nothing of the killed PATCH counts: its bytes never became an object.
    expect(await head(b.url, file)).toBe(6 * MiB);

    // tus-js-client resumes it, each request on the other replica than the last (A is back).
    a = await replica('a2');
    const replicas = [a.url, b.url];
    let turn = 0;
    const seen: string[] = [];
    const stack = new tusClient.DefaultHttpStack({});
    const alternating = {
      createRequest(method: string, url: string) {
        const u = new URL(url);
        const to = new URL(replicas[turn++ % 2]!);
        u.host = to.host;
        seen.push(`${method} ${u.port}`);
        return stack.createRequest(method, u.href);
      },
      getName: () => 'alternating',
    };
    await new Promise<void>((resolve, reject) => {
      const upload = new tusClient.Upload(data, {
        uploadUrl: `${b.url}${file}`,
        chunkSize: 4 * MiB,
        headers: { Authorization: `Bearer ${KEY}` },
        httpStack: alternating,
        retryDelays: [],
        onError: reject,
        onSuccess: () => resolve(),
      });
      upload.start();
    });
    expect(new Set(seen.map((s) => s.split(' ')[1])).size).toBe(2);
    expect(seen.filter((s) => s.startsWith('PATCH')).length).toBeGreaterThanOrEqual(3);

    expect(await head(a.url, file)).toBe(data.length);
    expect(sha(await stored('alternating.bin'))).toBe(sha(data));
    // The segments are gone once the file is whole.
    expect(await staging()).toEqual([]);
  }, 120_000);

  it('lets a PATCH on one replica take over a writer stalled on the other', async () => {
    const a = await replica('c');
    const b = await replica('d');
    const data = randomBytes(3 * MiB);
    const file = await create(a.url, data.length, 'taken-over.bin');
    // A's client sends 1 MiB and stalls (its network went away; the socket is still open).
    const stalled = stalledPatch(a.url, file, 0, data.subarray(0, MiB));
    await new Promise((r) => setTimeout(r, 300));
    // The client, reconnected through B, asks where the upload is and sends from there. B asks
    // A to let go (NOTIFY); A cuts its request and keeps the 1 MiB it has.
    const t0 = Date.now();
    const first = await patch(b.url, file, 0, data.subarray(0, 64 * 1024));
    const tookOver = Date.now() - t0;
    expect(await stalled.answered).toBe('dropped');
    console.log(`PATCH on one replica took over the other's stalled writer in ${tookOver} ms`);
    expect(tookOver).toBeLessThan(5000);
    // The offset moved on under it: 409, as tus says; the client asks again and resumes.
    expect(first.status).toBe(409);
    const offset = await head(b.url, file);
    expect(offset).toBe(MiB);
    expect((await patch(b.url, file, offset, data.subarray(offset))).status).toBe(204);
    expect(sha(await stored('taken-over.bin'))).toBe(sha(data));
    stalled.abort();
  }, 60_000);

  it('takes IndexedCP chunks on either replica and publishes the whole file once', async () => {
    const a = await replica('e');
    const b = await replica('f');
    const before = await staging();
    const chunks = [randomBytes(MiB), randomBytes(MiB), randomBytes(123)];
    const send = (url: string, index: number) =>
      fetch(`${url}/upload`, {
        method: 'POST',
        headers: {
          Authorization: `Bearer ${KEY}`,
          'X-Chunk-Index': String(index),
          'X-Chunk-Total': String(chunks.length),
          'X-File-Name': 'seed-style.dat',
          'X-Upload-Id': 'icp-replicas-1',
          'Content-Type': 'application/octet-stream',
        },
        body: chunks[index],
      });
    // Out of order, across replicas: chunk 2 first (buffered), then 0 and 1.
    expect((await send(b.url, 2)).status).toBe(200);
    expect((await send(a.url, 0)).status).toBe(200);
    expect((await send(b.url, 1)).status).toBe(200);
    await waitFor(async () => (await s3.store('lab').head('files/seed-style.dat')) !== undefined, 5000, 100);
    expect(sha(await stored('seed-style.dat'))).toBe(sha(Buffer.concat(chunks)));
    expect(await staging()).toEqual(before);
  }, 60_000);
});
