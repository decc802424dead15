/**
 * 1 GiB over loopback: (a) our tus endpoint with tus-js-client, (b) @tus/server + file store
 * with the same client, (c) a bare Node server piping the body to a file; then the IndexedCP
 * protocol with 1 MiB and 8 MiB chunks. Interleaved rounds, medians, one run.
 *   pnpm --filter chunked-upload bench        (BENCH_MB=1024 BENCH_ROUNDS=3 TUS_CHUNK_MB=8)
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  createReadStream,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { buildPackage, recordBench, spawnService } from '@qlab/testkit';
import * as tus from 'tus-js-client';

const MiB = 1024 * 1024;
const SIZE = Number(process.env.BENCH_MB ?? 1024) * MiB;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
// tus-js-client's default sends the rest of the file in one PATCH; 8 MiB PATCHes are the other
// common setting (proxies with body limits). Both are measured.
const TUS_CHUNKS = [Number.POSITIVE_INFINITY, 8 * MiB];
const KEY = 'bench-key';
const serviceDir = path.resolve(__dirname, '..');
const repoRoot = path.resolve(serviceDir, '../..');

function makeInput(file: string) {
  const fd = openSync(file, 'w');
  for (let left = SIZE; left > 0; left -= MiB) writeSync(fd, randomBytes(Math.min(MiB, left)));
  closeSync(fd);
}

const rssKb = (pid: number) =>
  Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);

async function timed(
  pid: number | undefined,
  work: () => Promise<void>,
): Promise<{ seconds: number; peakKb: number }> {
  let peakKb = pid ? rssKb(pid) : 0;
  const timer = pid ? setInterval(() => (peakKb = Math.max(peakKb, rssKb(pid))), 20) : undefined;
  const t0 = process.hrtime.bigint();
  try {
    await work();
  } finally {
    if (timer) clearInterval(timer);
  }
  return {
    seconds: Number(process.hrtime.bigint() - t0) / 1e9,
    peakKb: pid ? Math.max(peakKb, rssKb(pid)) : 0,
  };
}

function tusUpload(
  endpoint: string,
  file: string,
  headers: Record<string, string>,
  chunkSize: number,
): Promise<void> {
  return new Promise((resolve, reject) => {
    // A path-backed stream lets tus-js-client slice by re-opening the file, so any chunk size works.
    const upload = new tus.Upload(createReadStream(file), {
      endpoint,
      headers,
      chunkSize,
      uploadSize: SIZE,
      retryDelays: [],
      metadata: { filename: `bench-${Date.now()}.bin` },
      storeFingerprintForResuming: false,
      onError: reject,
      onSuccess: () => resolve(),
    });
    upload.start();
  });
}

function rawUpload(url: string, file: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        headers: { 'Content-Length': String(SIZE), 'Content-Type': 'application/octet-stream' },
      },
      (res) => {
        res.resume();
        res.on('end', () =>
          res.statusCode === 204 ? resolve() : reject(new Error(`bare ${res.statusCode}`)),
        );
      },
    );
    req.on('error', reject);
    createReadStream(file, { highWaterMark: MiB }).pipe(req);
  });
}

const agent = new Agent({ keepAlive: true, maxSockets: 1 });
async function indexedcpUpload(base: string, file: string, chunkSize: number, id: string): Promise<void> {
  const total = Math.ceil(SIZE / chunkSize);
  const fd = openSync(file, 'r');
  const buf = Buffer.allocUnsafe(chunkSize);
  try {
    for (let i = 0; i < total; i++) {
      const n = readSync(fd, buf, 0, chunkSize, i * chunkSize);
      await new Promise<void>((resolve, reject) => {
        const req = request(
          `${base}/upload`,
          {
            method: 'POST',
            agent,
            headers: {
              Authorization: `Bearer ${KEY}`,
              'X-Chunk-Index': String(i),
              'X-Chunk-Total': String(total),
              'X-File-Name': `icp-${id}.bin`,
              'X-Upload-Id': id,
              'Content-Type': 'application/octet-stream',
              'Content-Length': String(n),
            },
          },
          (res) => {
            res.resume();
            res.on('end', () =>
              res.statusCode === 200 ? resolve() : reject(new Error(`indexedcp ${res.statusCode}`)),
            );
          },
        );
        req.on('error', reject);
        req.end(buf.subarray(0, n));
      });
    }
  } finally {
    closeSync(fd);
  }
}

/** fdatasyncs every file in a folder; returns the seconds it took. */
async function fsyncDir(dir: string): Promise<number> {
  const { open, readdir } = await import('node:fs/promises');
  const t0 = process.hrtime.bigint();
  for (const name of await readdir(dir)) {
    const h = await open(path.join(dir, name), 'r');
    await h.datasync();
    await h.close();
  }
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

const durable: Record<string, number[]> = { tus: [], tus8: [] };
const durableRate: Record<string, number[]> = { tus: [], tus8: [] };

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const mbps = (s: number) => SIZE / 1e6 / s;

async function main() {
  buildPackage(repoRoot, 'chunked-upload');
  const work = mkdtempSync(path.join(tmpdir(), 'qlab-bench-up-'));
  const input = path.join(work, 'input.bin');
  makeInput(input);
  for (const d of ['ours', 'tus', 'bare']) mkdirSync(path.join(work, d));

  const ours = await spawnService(process.execPath, [path.join(serviceDir, 'dist/main.js')], {
    env: {
      DATA_DIR: path.join(work, 'ours'),
      PORT: '0',
      UPLOAD_API_KEYS: KEY,
      UPLOAD_MAX_BYTES: String(4 * SIZE),
      MQTT_URL: '',
      LOG_LEVEL: 'info',
    },
  });
  const anchor = await spawnService(process.execPath, [
    path.join(__dirname, 'tus-server-baseline.mjs'),
    path.join(work, 'tus'),
  ]);
  const bare = await spawnService(process.execPath, [
    path.join(__dirname, 'bare-server.mjs'),
    path.join(work, 'bare'),
  ]);
  const rss0 = rssKb(ours.child.pid!);
  let peak = rss0;
  const r: Record<string, number[]> = {
    ours: [],
    tus: [],
    ours8: [],
    tus8: [],
    bare: [],
    icp1: [],
    icp8: [],
  };
  const clean = () => {
    for (const d of [
      path.join(work, 'ours', 'chunked-upload', 'files'),
      path.join(work, 'tus'),
      path.join(work, 'bare'),
    ]) {
      rmSync(d, { recursive: true, force: true });
      mkdirSync(d, { recursive: true });
    }
  };

  for (let round = 0; round < ROUNDS; round++) {
    const targets = ['ours', 'tus', 'ours8', 'tus8', 'bare', 'icp1', 'icp8'];
    const order = round % 2 === 0 ? targets : [...targets].reverse();
    for (const target of order) {
      clean();
      // Start every run with no dirty pages from the previous one (they would stall its writes).
      spawnSync('sync');
      await new Promise((done) => setTimeout(done, 1000));
      let t: { seconds: number; peakKb: number };
      const chunk = target.endsWith('8') ? TUS_CHUNKS[1]! : TUS_CHUNKS[0]!;
      if (target.startsWith('ours'))
        t = await timed(ours.child.pid, () =>
          tusUpload(`${ours.url}/files`, input, { Authorization: `Bearer ${KEY}` }, chunk),
        );
      else if (target.startsWith('tus'))
        t = await timed(undefined, async () => {
          await tusUpload(`${anchor.url}/files`, input, {}, chunk);
          // Ours acknowledges only fsynced bytes; time @tus/server until its bytes are on disk too.
          durable[target]!.push(await fsyncDir(path.join(work, 'tus')));
        });
      else if (target === 'bare') t = await timed(undefined, () => rawUpload(bare.url, input));
      else {
        const size = target === 'icp1' ? MiB : 8 * MiB;
        t = await timed(ours.child.pid, () => indexedcpUpload(ours.url, input, size, `r${round}-${target}`));
      }
      if (target.startsWith('ours') || target.startsWith('icp')) peak = Math.max(peak, t.peakKb);
      const syncSeconds = target.startsWith('tus') ? durable[target]!.at(-1)! : 0;
      r[target]!.push(mbps(t.seconds - syncSeconds));
      if (target.startsWith('tus')) durableRate[target]!.push(mbps(t.seconds));
      process.stdout.write(`round ${round + 1} ${target}: ${mbps(t.seconds).toFixed(0)} MB/s\n`);
    }
  }
  for (const child of [ours.child, anchor.child, bare.child]) child.kill('SIGTERM');
  rmSync(work, { recursive: true, force: true });

  const m = Object.fromEntries(Object.entries(r).map(([k, v]) => [k, median(v)])) as Record<string, number>;
  const list = (xs: number[]) => xs.map((x) => x.toFixed(0)).join(', ');
  console.log(
    `\nchunked-upload benchmark: ${(SIZE / MiB).toFixed(0)} MiB over loopback, ${ROUNDS} rounds, medians (MB/s = 10^6 B/s)`,
  );
  console.log(
    `  (a) ours, tus-js-client defaults (1 PATCH)  ${m.ours!.toFixed(0).padStart(5)}   (${list(r.ours!)})`,
  );
  console.log(
    `  (b) @tus/server + file store, same client  ${m.tus!.toFixed(0).padStart(5)}   (${list(r.tus!)})`,
  );
  console.log(
    `  (b, durable) the same, until its file is fsynced ${median(durableRate.tus!).toFixed(0).padStart(5)}   (${list(durableRate.tus!)})`,
  );
  console.log(
    `  (a8) ours, 8 MiB PATCHes                   ${m.ours8!.toFixed(0).padStart(5)}   (${list(r.ours8!)})`,
  );
  console.log(
    `  (b8) @tus/server, 8 MiB PATCHes            ${m.tus8!.toFixed(0).padStart(5)}   (${list(r.tus8!)})`,
  );
  console.log(
    `  (c) bare Node server, body piped to file   ${m.bare!.toFixed(0).padStart(5)}   (${list(r.bare!)})`,
  );
  console.log(
    `  IndexedCP, 1 MiB chunks                    ${m.icp1!.toFixed(0).padStart(5)}   (${list(r.icp1!)})`,
  );
  console.log(
    `  IndexedCP, 8 MiB chunks                    ${m.icp8!.toFixed(0).padStart(5)}   (${list(r.icp8!)})`,
  );
  console.log(
    `  ratios: a/b ${(m.ours! / m.tus!).toFixed(2)}, a/(b durable) ${(m.ours! / median(durableRate.tus!)).toFixed(2)}, a/c ${(m.ours! / m.bare!).toFixed(2)}, a8/b8 ${(m.ours8! / m.tus8!).toFixed(2)}, a8/(b8 durable) ${(m.ours8! / median(durableRate.tus8!)).toFixed(2)}`,
  );
  console.log(
    '  (ours fsyncs before acknowledging every PATCH; @tus/server does not; the bare server fsyncs once, before it answers)',
  );
  // For `pnpm bench:report` (issue 19). The bare peer is issue 19's "bare pipe + fsync": it
  // answers once its file is flushed (bare-server.mjs), as ours answers once fsynced.
  recordBench('chunked-upload', {
    'upload.durable-vs-tus': m.ours! / median(durableRate.tus!),
    'upload.durable-vs-bare': m.ours! / m.bare!,
    'upload.patch8-vs-tus': m.ours8! / m.tus8!,
    'memory.rss-1gib': (peak - rss0) / 1024,
  });
  console.log(
    `  our server RSS: ${(rss0 / 1024).toFixed(0)} MB at start, peak ${(peak / 1024).toFixed(0)} MB, growth ${((peak - rss0) / 1024).toFixed(0)} MB`,
  );
  for (const [what, ok] of [
    ['a >= 1.2 x b', m.ours! / m.tus! >= 1.2],
    ['a >= 0.8 x c', m.ours! / m.bare! >= 0.8],
    ['RSS growth < 100 MB', (peak - rss0) / 1024 < 100],
  ] as const) {
    console.log(`  target ${what}: ${ok ? 'met' : 'MISSED'}`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
