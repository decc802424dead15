/**
 * Job files in a blob store (issue 18, "job-worker"): two API replicas on one PostgreSQL queue
 * and one S3 bucket serve every job's files, whichever took the upload; a remote worker (over
 * HTTP, to the other replica) and an in-process one (in a local copy) both run jobs whose
 * inputs and outputs are objects. And BlobJobFiles' own rules, on a folder store and on S3.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import { Readable } from 'node:stream';
import { type BlobStore, FileBlobStore, S3BlobStore, s3ClientFromEnv } from '@qlab/blob-store';
import { type LocalS3, startLocalS3 } from '@qlab/blob-store/testing';
import { type Listening, listen, openDatabase, parseDbUrl, silentLogger } from '@qlab/kit';
import { closedPort, pgSchemaUrl, pgTestUrl, tempDir, waitFor } from '@qlab/testkit';
import { compose } from '../src/compose';
import { BlobJobFiles } from '../src/storage/blob-job-files';
import { migrations } from '../src/storage/migrations';
import { builtInHandlers } from '../src/worker/handlers';
import { HttpJobSource } from '../src/worker/http-source';
import { LocalJobSource } from '../src/worker/local-source';
import { WorkerPool } from '../src/worker/pool';

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const tmp = tempDir('qlab-job-blobs-');
let s3: LocalS3;
let n = 0;
beforeAll(async () => {
  s3 = await startLocalS3('qlab-jobs');
}, 60_000);
afterAll(async () => {
  await s3.close();
  tmp.cleanup();
});

function rules(name: string, open: () => Promise<BlobStore>) {
  describe(`job files in ${name}`, () => {
    let files: BlobJobFiles;
    beforeEach(async () => {
      files = new BlobJobFiles(await open(), `${tmp.dir}/work${n++}`);
    });

    it('saves, lists, opens and removes files of any name, and refuses what a folder would', async () => {
      const saved = await files.save('job-1', 'input/my data (1).csv', Buffer.from('a,b\n'));
      expect(saved).toMatchObject({ relative_path: 'input/my data (1).csv', size: 4, sha256: sha('a,b\n') });
      await files.save('job-1', 'input/données/報告.txt', Readable.from([Buffer.from('x')]));
      expect(await files.list('job-1')).toEqual([
        { path: 'input/données/報告.txt', size: 1 },
        { path: 'input/my data (1).csv', size: 4 },
      ]);
      const { stream, size } = await files.open('job-1', 'input/my data (1).csv');
      const parts: Buffer[] = [];
      for await (const p of stream) parts.push(p as Buffer);
      expect([size, Buffer.concat(parts).toString()]).toEqual([4, 'a,b\n']);
      // A file where a folder is, or under a file: 409, as on disk.
      await expect(files.save('job-1', 'input/données', Buffer.from('y'))).rejects.toMatchObject({
        status: 409,
      });
      await expect(files.save('job-1', 'input/my data (1).csv/x', Buffer.from('y'))).rejects.toMatchObject({
        status: 409,
      });
      // Too big: 413 and nothing stored.
      await expect(files.save('job-1', 'output/big.bin', Buffer.alloc(100), 10)).rejects.toMatchObject({
        status: 413,
      });
      for (const bad of ['../x', '/etc/passwd', 'input/a\0b', 'input/x.part', `input/${'é'.repeat(150)}`])
        await expect(files.save('job-1', bad, Buffer.from('z'))).rejects.toMatchObject({ status: 400 });
      expect(() => files.resolveUnder('job-1', 'output', 'output/../input/x')).toThrow(/not inside output/);
      await expect(files.open('job-1', 'input/none')).rejects.toMatchObject({ status: 404 });
      await expect(files.list('../job')).rejects.toMatchObject({ status: 400 });
      expect((await files.list('job-1')).length).toBe(2);
      await files.remove('job-1');
      expect(await files.list('job-1')).toEqual([]);
    });
  });
}
rules('a folder', async () => FileBlobStore.open(`${tmp.dir}/store${n++}`));
rules('S3', async () => s3.store(`rules${n++}`));

const pgUrl = pgTestUrl('job-worker replicas');
(pgUrl ? describe : describe.skip)('two job-worker API replicas on PostgreSQL and S3', () => {
  const TOKEN = 'jobs-replica-token-0123456789';
  const replicas: { url: string; server: Listening; close(): Promise<void>; source: LocalJobSource }[] = [];
  const pools: WorkerPool[] = [];
  afterAll(async () => {
    for (const p of pools) await p.stop();
    for (const r of replicas) await r.close();
  });

  async function replica(url: string, name: string) {
    const knex = await openDatabase({ target: parseDbUrl(url), migrations });
    const q = compose(
      {
        storageDir: `${tmp.dir}/${name}`,
        apiToken: TOKEN,
        leaseMs: 5000,
        maxFileBytes: 1 << 20,
        retentionMs: 0,
      },
      { knex, logger: silentLogger(), blobStore: s3.store('jobs') },
    );
    const server = await listen(q.app, { port: 0, graceMs: 0 });
    const r = {
      url: server.url,
      server,
      source: new LocalJobSource(q.repo, q.workspace, 5000),
      async close() {
        await server.close();
        q.close();
        await knex.destroy();
      },
    };
    replicas.push(r);
    return r;
  }
  const auth = { Authorization: `Bearer ${TOKEN}` };
  const finished = (url: string, id: string) =>
    waitFor(
      async () => {
        const j = (await (await fetch(`${url}/jobs/${id}`, { headers: auth })).json()) as { status: string };
        return ['completed', 'error', 'cancelled'].includes(j.status);
      },
      15_000,
      50,
    );

  it('serves on one replica the files a job created on the other has, run by a remote and a local worker', async () => {
    const { url: schemaUrl } = pgSchemaUrl(pgUrl!);
    const a = await replica(schemaUrl, 'a');
    const b = await replica(schemaUrl, 'b');
    const create = async (task: string, params: object) => {
      const form = new FormData();
      form.set('task_type', task);
      form.set('params', JSON.stringify(params));
      form.set('input', new Blob([Buffer.from('alpha')]), 'first file.txt');
      form.set('input2', new Blob([Buffer.from('beta')]), 'b.txt');
      const res = await fetch(`${a.url}/jobs`, { method: 'POST', headers: auth, body: form });
      expect(res.status).toBe(201);
      return ((await res.json()) as { job_id: string }).job_id;
    };
    // A remote worker, talking to B only: it reads A's upload through B and stores its output there.
    const remote = new WorkerPool({
      source: new HttpJobSource(b.url, TOKEN, 5000),
      handlers: { 'archive.zip': builtInHandlers()['archive.zip']! },
      concurrency: 1,
      pollIntervalMs: 20,
      logger: silentLogger(),
    });
    pools.push(remote);
    remote.start();
    const zipped = await create('archive.zip', { name: 'run.zip' });
    await finished(a.url, zipped);
    await remote.stop();
    // A worker in B's process: the job runs in a local copy, its output goes to the bucket.
    const local = new WorkerPool({
      source: b.source,
      handlers: { 'checksum.sha256': builtInHandlers()['checksum.sha256']! },
      concurrency: 1,
      pollIntervalMs: 20,
      logger: silentLogger(),
    });
    pools.push(local);
    local.start();
    const summed = await create('checksum.sha256', {});
    await finished(a.url, summed);

    const files = async (id: string) =>
      (
        (await (await fetch(`${a.url}/jobs/${id}/files`, { headers: auth })).json()) as {
          files: { path: string }[];
        }
      ).files.map((f) => f.path);
    expect(await files(zipped)).toEqual(['input/b.txt', 'input/first file.txt', 'output/run.zip']);
    const zip = await fetch(`${a.url}/jobs/${zipped}/files/output/run.zip`, { headers: auth });
    expect(zip.status).toBe(200);
    expect(
      Buffer.from(await zip.arrayBuffer())
        .subarray(0, 2)
        .toString(),
    ).toBe('PK');
    const done = (await (await fetch(`${a.url}/jobs/${summed}`, { headers: auth })).json()) as {
      status: string;
      output: { files: { path: string; sha256: string }[] };
    };
    expect(done.status).toBe('completed');
    expect(done.output.files).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ path: 'input/first file.txt', sha256: sha('alpha') }),
      ]),
    );
    // Deleted through B: gone from the bucket for A too.
    expect((await fetch(`${b.url}/jobs/${zipped}`, { method: 'DELETE', headers: auth })).status).toBe(204);
    expect(await files(summed)).toEqual(['input/b.txt', 'input/first file.txt']);
    const keys: string[] = [];
    for await (const o of s3.store('jobs').list(`jobs/${zipped}/`)) keys.push(o.key);
    expect(keys).toEqual([]);
  }, 60_000);

  it('leaves no file of a deleted job: not an output that arrived meanwhile, not for a job of its id', async () => {
    const [a, b] = replicas;
    const json = { ...auth, 'Content-Type': 'application/json' };
    const made = await fetch(`${a!.url}/jobs`, {
      method: 'POST',
      headers: json,
      body: JSON.stringify({ task_type: 'archive.zip', job_id: 'reused-id-1' }),
    });
    expect(made.status).toBe(201);
    // An output arriving on B while A deletes the job: refused once whole, and not kept.
    const u = new URL(`${b!.url}/jobs/reused-id-1/files/output/late.bin`);
    const answered = new Promise<number>((resolve, reject) => {
      const req = http.request(
        {
          host: u.hostname,
          port: u.port,
          path: u.pathname,
          method: 'PUT',
          headers: { ...auth, 'Content-Length': '8' },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.write('half');
      setTimeout(async () => {
        expect((await fetch(`${a!.url}/jobs/reused-id-1`, { method: 'DELETE', headers: auth })).status).toBe(
          204,
        );
        req.end('done');
      }, 300);
    });
    expect(await answered).toBe(404);
    // Something an older version left under the id is not the new job's either.
    await s3.store('jobs').put('jobs/reused-id-1/output/stale.bin', Readable.from([Buffer.from('old')]));
    const again = await fetch(`${a!.url}/jobs`, {
      method: 'POST',
      headers: json,
      body: JSON.stringify({ task_type: 'archive.zip', job_id: 'reused-id-1' }),
    });
    expect(again.status).toBe(201);
    const listed = (await (await fetch(`${b!.url}/jobs/reused-id-1/files`, { headers: auth })).json()) as {
      files: unknown[];
    };
    expect(listed.files).toEqual([]);
  }, 30_000);
});

describe('a job file store that is down', () => {
  it('answers 503, not 500', async () => {
    const down = new S3BlobStore(
      s3ClientFromEnv(
        { ...s3.env, AWS_ENDPOINT_URL_S3: `http://127.0.0.1:${await closedPort()}` },
        { maxAttempts: 1 },
      ),
      'qlab-jobs',
      'down',
    );
    const files = new BlobJobFiles(down, `${tmp.dir}/down`);
    await expect(files.save('job-2', 'output/x.txt', Buffer.from('x'))).rejects.toMatchObject({
      status: 503,
    });
  });
});
