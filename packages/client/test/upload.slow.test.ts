import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { closedPort, tempDir } from '@qlab/testkit';
import { KEY, type RunningUploads, startUploads } from 'chunked-upload/testing';
import { tusUploadFile } from '../src';
import { runCli } from '../src/cli/program';

async function qlab(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, { out: (l) => out.push(l), err: (l) => err.push(l), progress: false });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('uploads to chunked-upload', () => {
  const tmp = tempDir('qlab-upload-');
  let up: RunningUploads | undefined;
  const vars = ['QIBO_CLIENT_CONFIG', 'QLAB_INDEXEDCP_DB', 'QLAB_TUS_RESUME_FILE'] as const;
  const previous = Object.fromEntries(vars.map((k) => [k, process.env[k]]));
  beforeAll(() => {
    process.env.QIBO_CLIENT_CONFIG = path.join(tmp.dir, 'client.json');
    process.env.QLAB_INDEXEDCP_DB = path.join(tmp.dir, 'icp.db');
    process.env.QLAB_TUS_RESUME_FILE = path.join(tmp.dir, 'state', 'tus.json');
  });
  afterEach(async () => {
    await up?.close();
    up = undefined;
  });
  afterAll(() => {
    for (const k of vars) {
      if (previous[k] === undefined) delete process.env[k];
      else process.env[k] = previous[k];
    }
    tmp.cleanup();
  });

  it('resumes an interrupted tus upload from the server offset', async () => {
    const dir = tempDir('qlab-tus-srv-');
    const port = await closedPort();
    up = await startUploads({ pathMode: 'sanitize', dir: dir.dir, port });
    const file = path.join(tmp.dir, 'big.bin');
    const data = randomBytes(4 * 1024 * 1024);
    writeFileSync(file, data);
    const resumeFile = path.join(tmp.dir, 'tus-urls.json');
    const endpoint = `http://127.0.0.1:${port}/files`;
    let stopped = false;
    await expect(
      tusUploadFile(file, {
        endpoint,
        apiKey: KEY,
        chunkSize: 512 * 1024,
        resumeFile,
        retryDelays: [],
        onProgress: (sent) => {
          if (sent >= 1024 * 1024 && !stopped) {
            stopped = true;
            void up!.server.close();
          }
        },
      }),
    ).rejects.toThrow();
    await up.close();
    up = await startUploads({ pathMode: 'sanitize', dir: dir.dir, port });
    const result = await tusUploadFile(file, {
      endpoint,
      apiKey: KEY,
      chunkSize: 512 * 1024,
      resumeFile,
      retryDelays: [],
    });
    expect(result.resumed).toBe(true);
    expect(readFileSync(path.join(up.uploadDir, 'big.bin')).equals(data)).toBe(true);
    dir.cleanup();
  });

  it('qlab upload sends files with tus and with IndexedCP', async () => {
    up = await startUploads({ pathMode: 'sanitize' });
    const a = path.join(tmp.dir, 'a.dat');
    const b = path.join(tmp.dir, 'b.dat');
    writeFileSync(a, randomBytes(300_000));
    writeFileSync(b, randomBytes(2_500_000));
    expect((await qlab('config', 'set-upload-server', up.url, '--key', KEY)).code).toBe(0);
    const viaTus = await qlab('upload', a);
    expect(viaTus).toMatchObject({ code: 0 });
    expect(viaTus.out).toContain('uploaded');
    const viaIcp = await qlab('upload', '--protocol', 'indexedcp', b);
    expect(viaIcp.out).toContain('b.dat: complete');
    expect(readFileSync(path.join(up.uploadDir, 'a.dat')).equals(readFileSync(a))).toBe(true);
    expect(readFileSync(path.join(up.uploadDir, 'b.dat')).equals(readFileSync(b))).toBe(true);
  });

  it('qlab upload --encrypt seals IndexedCP chunks for a server with encryption on', async () => {
    up = await startUploads({ pathMode: 'sanitize', encryption: {} });
    const f = path.join(tmp.dir, 'sealed.dat');
    writeFileSync(f, randomBytes(1_500_000));
    const sent = await qlab(
      'upload',
      '--upload-server',
      up.url,
      '--key',
      KEY,
      '--protocol',
      'indexedcp',
      '--encrypt',
      f,
    );
    expect(sent).toMatchObject({ code: 0 });
    expect(sent.out).toContain('sealed.dat: complete');
    expect(readFileSync(path.join(up.uploadDir, 'sealed.dat')).equals(readFileSync(f))).toBe(true);
    expect((await qlab('upload', '--encrypt', f)).err).toContain('--protocol indexedcp');
  });

  it('qlab upload explains a wrong key and a missing file', async () => {
    up = await startUploads();
    const f = path.join(tmp.dir, 'c.dat');
    writeFileSync(f, 'c');
    const wrong = await qlab('upload', '--upload-server', up.url, '--key', 'nope', f);
    expect(wrong.code).toBe(1);
    expect(wrong.err).toMatch(/refused the API key|401/);
    expect((await qlab('upload', '--upload-server', up.url, path.join(tmp.dir, 'missing'))).err).toContain(
      'no such file',
    );
    expect((await qlab('upload', '--protocol', 'ftp', f)).err).toContain('--protocol');
  });
});
