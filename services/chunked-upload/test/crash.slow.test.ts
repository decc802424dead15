import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import path from 'node:path';
import { killGroup, spawnService, tempDir } from '@qlab/testkit';
import { KEY, sha256 } from './helpers';

const root = path.resolve(__dirname, '..');
const tsx = path.resolve(root, '../../node_modules/.bin/tsx');
const MiB = 1024 * 1024;

function startServer(dataDir: string) {
  return spawnService(tsx, ['--conditions=@qlab/source', 'src/main.ts'], {
    cwd: root,
    detached: true,
    env: {
      DATA_DIR: dataDir,
      PORT: '0',
      UPLOAD_API_KEYS: KEY,
      UPLOAD_PATH_MODE: 'sanitize',
      MQTT_URL: '',
      LOG_LEVEL: 'info',
    },
  });
}

const kill = (child: ChildProcess) => killGroup(child);

const tus = { Authorization: `Bearer ${KEY}`, 'Tus-Resumable': '1.0.0' };

async function patch(url: string, offset: number, body: Buffer): Promise<Response> {
  return fetch(url, {
    method: 'PATCH',
    headers: { ...tus, 'Upload-Offset': String(offset), 'Content-Type': 'application/offset+octet-stream' },
    body,
  });
}

describe('a server killed mid-upload', () => {
  const tmp = tempDir('qlab-crash-');
  afterAll(() => tmp.cleanup());

  it('resumes a tus upload from the last acknowledged byte, byte-identical', async () => {
    const data = randomBytes(24 * MiB);
    let server = await startServer(tmp.dir);
    const created = await fetch(`${server.url}/files`, {
      method: 'POST',
      headers: {
        ...tus,
        'Upload-Length': String(data.length),
        'Upload-Metadata': `filename ${Buffer.from('crash.bin').toString('base64')}`,
      },
    });
    expect(created.status).toBe(201);
    const id = created.headers.get('location')!.split('/').pop()!;
    expect((await patch(`${server.url}/files/${id}`, 0, data.subarray(0, 8 * MiB))).status).toBe(204);
    expect((await patch(`${server.url}/files/${id}`, 8 * MiB, data.subarray(8 * MiB, 16 * MiB))).status).toBe(
      204,
    );

    // Half of the third PATCH is on the wire when the server dies.
    const url = new URL(`${server.url}/files/${id}`);
    const inflight = httpRequest({
      host: url.hostname,
      port: url.port,
      path: url.pathname,
      method: 'PATCH',
      headers: {
        ...tus,
        'Upload-Offset': String(16 * MiB),
        'Content-Type': 'application/offset+octet-stream',
        'Content-Length': String(8 * MiB),
      },
    });
    inflight.on('error', () => undefined);
    await new Promise<void>((resolve) => inflight.write(data.subarray(16 * MiB, 20 * MiB), () => resolve()));
    await new Promise((r) => setTimeout(r, 100));
    await kill(server.child);

    server = await startServer(tmp.dir);
    const head = await fetch(`${server.url}/files/${id}`, { method: 'HEAD', headers: tus });
    expect(head.status).toBe(200);
    const offset = Number(head.headers.get('upload-offset'));
    expect(offset).toBe(16 * MiB);
    expect((await patch(`${server.url}/files/${id}`, offset, data.subarray(offset))).status).toBe(204);
    const stored = readFileSync(path.join(tmp.dir, 'chunked-upload', 'files', 'crash.bin'));
    expect(sha256(stored)).toBe(sha256(data));
    await kill(server.child);
  });

  it('resumes an IndexedCP upload after a restart', async () => {
    const chunks = [randomBytes(MiB), randomBytes(MiB), randomBytes(MiB / 2)];
    const send = (base: string, i: number) =>
      fetch(`${base}/upload`, {
        method: 'POST',
        headers: {
          Authorization: `Bearer ${KEY}`,
          'X-Chunk-Index': String(i),
          'X-File-Name': 'icp.bin',
          'X-Chunk-Total': '3',
          'X-Upload-Id': 'crash-1',
          'Content-Type': 'application/octet-stream',
        },
        body: chunks[i],
      });
    let server = await startServer(tmp.dir);
    expect((await send(server.url, 0)).status).toBe(200);
    expect((await send(server.url, 2)).status).toBe(200); // buffered out of order
    await kill(server.child);
    server = await startServer(tmp.dir);
    expect((await send(server.url, 0)).status).toBe(200); // a retry after the crash: stored once
    const last = (await (await send(server.url, 1)).json()) as { complete: boolean; actualFilename: string };
    expect(last.complete).toBe(true);
    const stored = readFileSync(path.join(tmp.dir, 'chunked-upload', 'files', last.actualFilename));
    expect(sha256(stored)).toBe(sha256(Buffer.concat(chunks)));
    await kill(server.child);
  });
});
