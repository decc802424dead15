import { readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';

// biome-ignore lint/suspicious/noExplicitAny: tests read whatever JSON came back.
const json = async (res: Response | Promise<Response>): Promise<any> => (await res).json();

import { tempDir } from '@qlab/testkit';
import { makeZip, startStore } from 'calibration-store/testing';
import { startQueue } from 'job-worker/testing';
import { startGateway } from './helpers';

const KEY = 'mounts-key-0123456789abcdef';

describe('the calibration-store and job-worker mounts, with each service requiring its own token', () => {
  const tmp = tempDir('qlab-gateway-mounts-');
  const closers: (() => Promise<void> | void)[] = [];
  let url: string;
  let storeUrl: string;

  beforeAll(async () => {
    const store = await startStore({ apiToken: 'store-token' });
    const queue = await startQueue({ apiToken: 'jobs-token' });
    storeUrl = store.url;
    closers.push(
      () => store.close(),
      () => queue.close(),
    );
    const gw = await startGateway({
      keys: [[KEY, ['read', 'write']]],
      services: {
        'calibration-store': { url: store.url, token: 'store-token' },
        'job-worker': { url: queue.url, token: 'jobs-token' },
      },
    });
    url = gw.url;
    closers.push(() => gw.close());
  });
  afterAll(async () => {
    for (const c of closers.reverse()) await c();
    tmp.cleanup();
  });

  test("the seed's calibration upload, list and download work through /api/store with the gateway key only", async () => {
    // The service refuses callers without its token; the gateway presents it for them.
    expect((await fetch(`${storeUrl}/calibrations/list`)).status).toBe(401);
    const zip = await makeZip(path.join(tmp.dir, 'cal.zip'), { 'parameters.json': '{"nshots":1024}' });
    const form = new FormData();
    form.set('hashID', 'gw123');
    form.set('notes', 'through the gateway');
    form.set('archive', new Blob([readFileSync(zip)]), 'cal.zip');
    const up = await fetch(`${url}/api/store/calibrations/upload`, {
      method: 'POST',
      headers: { 'X-API-Key': KEY },
      body: form,
    });
    expect(up.status).toBe(200); // the seed answers 200
    const list = await json(fetch(`${url}/api/store/calibrations/list`, { headers: { 'X-API-Key': KEY } }));
    expect(list.items[0]).toMatchObject({ hashID: 'gw123', notes: 'through the gateway' });
    // Links point back through the gateway (X-Forwarded-Prefix).
    expect(list.items[0].download_url.startsWith(`${url}/api/store/calibrations/`)).toBe(true);
    const archive = await fetch(list.items[0].download_url, { headers: { 'X-API-Key': KEY } });
    expect(archive.status).toBe(200);
    expect(Buffer.from(await archive.arrayBuffer()).equals(readFileSync(zip))).toBe(true);
    const search = await json(
      fetch(`${url}/api/db/search?query=gw123`, { method: 'POST', headers: { 'X-API-Key': KEY } }),
    );
    expect(search.result_counts.calibrations).toBe(1);
  });

  test('jobs are created, listed and read through /api/jobs', async () => {
    const created = await fetch(`${url}/api/jobs`, {
      method: 'POST',
      headers: { 'X-API-Key': KEY, 'content-type': 'application/json' },
      body: JSON.stringify({ task_type: 'demo.task', params: { n: 1 } }),
    });
    expect(created.status).toBe(201);
    const job = await json(created);
    const read = await json(fetch(`${url}/api/jobs/${job.job_id}`, { headers: { 'X-API-Key': KEY } }));
    expect(read).toMatchObject({ job_id: job.job_id, task_type: 'demo.task', status: 'queued' });
    const stats = await json(fetch(`${url}/api/jobs/stats`, { headers: { 'X-API-Key': KEY } }));
    expect(stats.by_status.queued).toBe(1);
    const search = await json(
      fetch(`${url}/api/db/search?query=demo.task`, { method: 'POST', headers: { 'X-API-Key': KEY } }),
    );
    expect(search.result_counts.jobs).toBe(1);
    // "." is not an id: it must not become /jobs/. (the whole list) or fail a service.
    for (const query of ['.', '..', 'a%00'].map(encodeURIComponent)) {
      const odd = await json(
        fetch(`${url}/api/db/search?query=${query}`, { method: 'POST', headers: { 'X-API-Key': KEY } }),
      );
      expect([query, odd.result_counts.jobs]).toEqual([query, 0]);
      expect(odd.missing_services ?? []).not.toContain('job-worker');
    }
    const overview = await json(fetch(`${url}/api/db/overview`, { headers: { 'X-API-Key': KEY } }));
    expect(overview.calibration_stats).toMatchObject({ calibrations: 1, results: 0 });
    expect(overview.job_stats.by_status.queued).toBe(1);
  });

  test("a body over the service's limit gets the service's own 413 through the gateway, not a 502", async () => {
    const big = JSON.stringify({
      task_type: 'checksum.sha256',
      params: { pad: 'x'.repeat(8 * 1024 * 1024) },
    });
    for (let i = 0; i < 5; i++) {
      const res = await fetch(`${url}/api/jobs`, {
        method: 'POST',
        headers: { 'X-API-Key': KEY, 'Content-Type': 'application/json' },
        body: big,
      });
      expect(res.status).toBe(413);
      expect(res.headers.get('content-type')).toMatch(/application\/problem\+json/);
    }
    // The connection pool to the service is still good afterwards.
    expect((await fetch(`${url}/api/jobs`, { headers: { 'X-API-Key': KEY } })).status).toBe(200);
  });

  test('a body far over the limit (200 MiB, still being sent) gets the 413 too, and the sender is cut off', async () => {
    const got = await new Promise<{ status: number; type: string }>((resolve, reject) => {
      const req = http.request(`${url}/api/jobs`, {
        method: 'POST',
        headers: {
          'X-API-Key': KEY,
          'Content-Type': 'application/json',
          'Content-Length': String(200 * 1024 ** 2),
        },
      });
      req.on('response', (res) => {
        res.resume();
        resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']) });
      });
      // The connection is cut once the gateway stops reading: expected, after the answer.
      req.on('error', (err) => reject(err));
      const chunk = Buffer.alloc(1024 * 1024, 0x20);
      let sent = 0;
      const write = () => {
        while (sent < 200) {
          sent++;
          if (!req.write(chunk)) return void req.once('drain', write);
        }
        req.end();
      };
      write();
    });
    expect(got.status).toBe(413);
    expect(got.type).toMatch(/application\/problem\+json/);
    expect((await fetch(`${url}/api/jobs`, { headers: { 'X-API-Key': KEY } })).status).toBe(200);
  });

  test('a caller that sends its whole body before reading gets the 413, and its next request on the connection', async () => {
    // As Python's http.client does: the body goes out whole, then the answer is read.
    const body = Buffer.alloc(8 * 1024 * 1024, 0x20);
    const { port } = new URL(url);
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(Number(port), '127.0.0.1', () => {
        socket.write(
          `POST /api/jobs HTTP/1.1\r\nHost: x\r\nX-API-Key: ${KEY}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`,
        );
        socket.write(body);
        socket.write(`GET /api/jobs HTTP/1.1\r\nHost: x\r\nX-API-Key: ${KEY}\r\nConnection: close\r\n\r\n`);
      });
      let got = '';
      socket.on('data', (d) => {
        got += d.toString('latin1');
      });
      socket.on('end', () => resolve(got));
      socket.on('error', reject);
      socket.setTimeout(15_000, () => reject(new Error(`stalled; got so far: ${got.slice(0, 200)}`)));
    });
    const statuses = [...answer.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]);
    expect(statuses).toEqual(['413', '200']);
  });
});
