import { existsSync, readdirSync } from 'node:fs';
import { connect } from 'node:net';
import path from 'node:path';
import { waitFor } from '@qlab/testkit';
import { type RunningQueue, startQueue } from './helpers';

/** Sends raw bytes and resolves with what came back once the server closes or answers. */
function raw(url: string, bytes: string | Buffer, endAfter = true): Promise<string> {
  const { port } = new URL(url);
  return new Promise((resolve, reject) => {
    const s = connect(Number(port), '127.0.0.1', () => {
      s.write(bytes);
      if (endAfter) s.end();
    });
    let got = '';
    s.on('data', (d) => {
      got += d.toString('latin1');
    });
    s.on('close', () => resolve(got));
    s.on('error', (err) => (got ? resolve(got) : reject(err)));
    s.setTimeout(5000, () => {
      s.destroy();
      resolve(got || 'TIMEOUT');
    });
  });
}

const form = (parts: string[], boundary = 'XB') =>
  `${parts.map((p) => `--${boundary}\r\n${p}`).join('\r\n')}\r\n--${boundary}--\r\n`;
const field = (name: string, value: string) =>
  `Content-Disposition: form-data; name="${name}"\r\n\r\n${value}`;
const file = (name: string, content: string, field = 'file') =>
  `Content-Disposition: form-data; name="${field}"; filename="${name}"\r\nContent-Type: text/plain\r\n\r\n${content}`;

describe('job-worker against hostile input', () => {
  let q: RunningQueue;
  beforeAll(async () => {
    q = await startQueue({ maxFileBytes: 1000 });
  });
  afterAll(async () => q.close());

  const jobDirs = () => {
    const root = path.join(q.dir, 'jobs');
    return existsSync(root) ? readdirSync(root) : [];
  };
  const count = async () => (await q.repo.list({ limit: 500, offset: 0 })).total;
  const post = (body: string, type = 'multipart/form-data; boundary=XB') =>
    fetch(`${q.url}/jobs`, { method: 'POST', headers: { 'content-type': type }, body });

  it('answers a truncated multipart body with 400, removes what it wrote, and stays up', async () => {
    const truncated = `--XB\r\n${field('task_type', 'x')}\r\n--XB\r\n${file('a.txt', 'abc')}`;
    const answer = await raw(
      q.url,
      `POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=XB\r\nContent-Length: ${truncated.length}\r\n\r\n${truncated}`,
      false,
    );
    expect(answer).toMatch(/^HTTP\/1\.1 400/);
    expect(answer).toContain('application/problem+json');
    expect((await fetch(`${q.url}/health`)).status).toBe(200);
    // The body also breaks off mid-part (Content-Length larger than what is sent).
    const cut = await raw(
      q.url,
      `POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=XB\r\nContent-Length: 9999\r\n\r\n--XB\r\n${file('b.txt', 'abcdef')}`,
    );
    expect(cut === '' || /^HTTP\/1\.1 400/.test(cut)).toBe(true);
    expect((await fetch(`${q.url}/health`)).status).toBe(200);
    // The client is gone before the server has cleaned up: give it a moment.
    await waitFor(() => jobDirs().length === 0);
    expect(await count()).toBe(0);
  });

  it('refuses surplus, repeated, oversized and badly named parts instead of dropping them', async () => {
    const cases: [string, number][] = [
      [form([field('task_type', 'archive.zip'), field('task_type', 'checksum.sha256')]), 400],
      [form([field('task_type', 'x'), file('a.txt', '1'), file('a.txt', '2')]), 400],
      [form([field('task_type', 'x'), ...Array.from({ length: 150 }, (_, i) => file(`f${i}`, 'x'))]), 400],
      [form([...Array.from({ length: 80 }, (_, i) => field(`f${i}`, 'x')), field('task_type', 'x')]), 400],
      [form([field('task_type', 'x'), file('big.bin', 'x'.repeat(1001))]), 413],
      [form([field('task_type', 'x'), file(`${'n'.repeat(300)}.txt`, 'x')]), 400],
      [form([field('task_type', 'x'), file('a\u0001b', 'x')]), 400],
      [form([field('task_type', 'x'), field('params', '{"a":1e400}')]), 400],
      [form([field('task_type', 'x'), field('params', `${'['.repeat(5000)}`)]), 400],
      [form([field('task_type', 'x'), field('params', 'not json')]), 400],
    ];
    for (const [body, status] of cases) {
      const res = await post(body);
      expect([body.slice(0, 120), res.status]).toEqual([body.slice(0, 120), status]);
      expect(res.headers.get('content-type')).toContain('problem+json');
      expect([body.slice(0, 120), jobDirs()]).toEqual([body.slice(0, 120), []]);
    }
    expect(jobDirs()).toEqual([]);
    expect(await count()).toBe(0);
    // Hostile names that are fine once reduced to a base name are kept as that base name.
    // A full-width ．．／ folds to ../ (NFKC): the name must still land in input/.
    const folded = await post(form([field('task_type', 'x'), file('\uff0e\uff0e\uff0fescaped', 'e')]));
    expect(folded.status).toBe(201);
    const foldedJob = (await folded.json()) as { job_id: string; input_files: { relative_path: string }[] };
    expect(foldedJob.input_files.map((f) => f.relative_path)).toEqual(['input/escaped']);
    expect(readdirSync(path.join(q.dir, 'jobs', foldedJob.job_id)).sort()).toEqual(['input', 'output']);
    await fetch(`${q.url}/jobs/${foldedJob.job_id}`, { method: 'DELETE' });
    const ok = await post(
      form([field('task_type', 'x'), file('../../etc/passwd', 'p'), file('..\\win.ini', 'w')]),
    );
    expect(ok.status).toBe(201);
    const job = (await ok.json()) as { job_id: string; input_files: { relative_path: string }[] };
    expect(job.input_files.map((f) => f.relative_path).sort()).toEqual(['input/passwd', 'input/win.ini']);
    await fetch(`${q.url}/jobs/${job.job_id}`, { method: 'DELETE' });
  });

  it('refuses JSON job bodies that are not UTF-8, too deep or out of range', async () => {
    const json = (body: string | Uint8Array) =>
      fetch(`${q.url}/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    expect((await json('{"task_type":"x","params":{"n":1e400}}')).status).toBe(400);
    expect((await json(`{"task_type":"x","params":${'{"a":'.repeat(100)}1${'}'.repeat(100)}}`)).status).toBe(
      400,
    );
    expect(
      (await json(Uint8Array.from([...Buffer.from('{"task_type":"'), 0xff, ...Buffer.from('"}')]))).status,
    ).toBe(400);
    expect(await count()).toBe(0);
  });

  it('stores output PUTs as sent, under output/ only, within JOBS_MAX_FILE_BYTES', async () => {
    const created = await fetch(`${q.url}/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"task_type":"x"}',
    });
    const { job_id } = (await created.json()) as { job_id: string };
    const put = (rel: string, body: string | ReadableStream, headers: Record<string, string> = {}) =>
      fetch(`${q.url}/jobs/${job_id}/files/${rel}`, {
        method: 'PUT',
        headers,
        body,
        // biome-ignore lint/suspicious/noExplicitAny: Node's fetch needs duplex for a stream body.
        ...({ duplex: 'half' } as any),
      });
    // A JSON or form Content-Type does not make the file empty.
    const asJson = await put('output/result.json', '{"a":1}', { 'content-type': 'application/json' });
    expect(asJson.status).toBe(201);
    expect(((await asJson.json()) as { size: number }).size).toBe(7);
    const asForm = await put('output/form.txt', 'a=1&b=2', {
      'content-type': 'application/x-www-form-urlencoded',
    });
    expect(((await asForm.json()) as { size: number }).size).toBe(7);
    // Declared and undeclared (chunked) bodies over the limit are 413, and nothing is kept.
    expect((await put('output/big.bin', 'x'.repeat(1001))).status).toBe(413);
    const chunked = new ReadableStream({
      start(c) {
        for (let i = 0; i < 5; i++) c.enqueue(new TextEncoder().encode('y'.repeat(300)));
        c.close();
      },
    });
    expect((await put('output/chunked.bin', chunked)).status).toBe(413);
    // Resolved paths, not strings, decide: output/../input/x is not under output/.
    expect((await put('output/%2E%2E/input/x', 'evil')).status).toBe(400);
    expect((await put('output/sub/../../input/x', 'evil')).status).toBe(400);
    expect((await put('input/x', 'evil')).status).toBe(400);
    // Names the file system or the workspace cannot take: 4xx, never a 500.
    expect((await put('output/result.json/inner', 'x')).status).toBe(409);
    expect((await put('output/dir/file', 'x')).status).toBe(201);
    expect((await put('output/dir', 'x')).status).toBe(409);
    expect((await put(`output/${'n'.repeat(300)}`, 'x')).status).toBe(400);
    expect((await put('output/sneaky.part', 'x')).status).toBe(400);
    const files = (await (await fetch(`${q.url}/jobs/${job_id}/files`)).json()) as {
      files: { path: string }[];
    };
    expect(files.files.map((f) => f.path).sort()).toEqual([
      'output/dir/file',
      'output/form.txt',
      'output/result.json',
    ]);
    const left = readdirSync(path.join(q.dir, 'jobs', job_id, 'output'));
    expect(left.filter((n) => n.endsWith('.part'))).toEqual([]);
    await fetch(`${q.url}/jobs/${job_id}`, { method: 'DELETE' });
  });
});
