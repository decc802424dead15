/**
 * Upload then download a 200 MB archive through the calibration store's HTTP API, and the same
 * bytes through a bare Node server that streams the body to a file and back, in one run.
 * Prints MB/s each way, the ratio to the bare server, and the store's RSS growth.
 *   pnpm --filter calibration-store bench        (BENCH_MB=200 BENCH_ROUNDS=3 to change)
 * BENCH_BLOB=s3 keeps the archives in a local S3-compatible server (s3rver, the tests' stand-in,
 * itself a Node process writing files) instead of the filesystem store.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { startLocalS3 } from '@qlab/blob-store/testing';
import { buildPackage, recordBench, spawnService } from '@qlab/testkit';
import archiver from 'archiver';

const MB = 1024 * 1024;
const SIZE_MB = Number(process.env.BENCH_MB ?? 200);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const BLOB = process.env.BENCH_BLOB === 's3' ? 's3' : 'file';
const serviceDir = path.resolve(__dirname, '..');
const repoRoot = path.resolve(serviceDir, '../..');

async function makeArchive(file: string, sizeMb: number): Promise<void> {
  let left = sizeMb;
  const data = new Readable({
    read() {
      if (left-- > 0) this.push(randomBytes(MB));
      else this.push(null);
    },
  });
  const archive = archiver('zip', { store: true });
  const out = createWriteStream(file);
  const done = new Promise<void>((resolve, reject) => {
    out.on('close', resolve);
    archive.on('error', reject);
  });
  archive.pipe(out);
  archive.append(data, { name: 'calibration/data.bin' });
  archive.append(JSON.stringify({ nshots: 1024 }), { name: 'calibration/parameters.json' });
  await archive.finalize();
  await done;
}

function rssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0);
}

/** Samples a process's RSS every 20 ms while `work` runs; returns the work's result and the peak. */
async function withRss<T>(pid: number, work: () => Promise<T>): Promise<{ result: T; peakKb: number }> {
  let peakKb = rssKb(pid);
  const timer = setInterval(() => {
    peakKb = Math.max(peakKb, rssKb(pid));
  }, 20);
  try {
    const result = await work();
    peakKb = Math.max(peakKb, rssKb(pid));
    return { result, peakKb };
  } finally {
    clearInterval(timer);
  }
}

function upload(url: string, file: string, multipart: boolean): Promise<number> {
  const size = statSync(file).size;
  const boundary = 'qlabbenchboundary7d1f';
  const head = multipart
    ? Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="hashID"\r\n\r\nbench\r\n` +
          `--${boundary}\r\nContent-Disposition: form-data; name="notes"\r\n\r\n200 MB transfer\r\n` +
          `--${boundary}\r\nContent-Disposition: form-data; name="archive"; filename="bench.zip"\r\nContent-Type: application/zip\r\n\r\n`,
      )
    : Buffer.alloc(0);
  const tail = multipart ? Buffer.from(`\r\n--${boundary}--\r\n`) : Buffer.alloc(0);
  const started = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        headers: {
          'Content-Length': String(head.length + size + tail.length),
          'Content-Type': multipart
            ? `multipart/form-data; boundary=${boundary}`
            : 'application/octet-stream',
        },
      },
      (res) => {
        let body = '';
        res.on('data', (d: Buffer) => {
          body += d.toString();
        });
        res.on('end', () => {
          if (res.statusCode !== 200) return reject(new Error(`upload ${res.statusCode}: ${body}`));
          resolve(Number(process.hrtime.bigint() - started) / 1e9);
        });
      },
    );
    req.on('error', reject);
    req.write(head);
    const source = createReadStream(file, { highWaterMark: MB });
    source.on('end', () => req.end(tail));
    source.pipe(req, { end: false });
  });
}

function download(url: string, expected: number): Promise<number> {
  const started = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    request(url, (res) => {
      let bytes = 0;
      res.on('data', (d: Buffer) => {
        bytes += d.length;
      });
      res.on('end', () => {
        if (res.statusCode !== 200 || bytes !== expected)
          return reject(new Error(`download ${res.statusCode}, ${bytes} bytes`));
        resolve(Number(process.hrtime.bigint() - started) / 1e9);
      });
    })
      .on('error', reject)
      .end();
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main() {
  buildPackage(repoRoot, 'calibration-store');
  const work = mkdtempSync(path.join(tmpdir(), 'qlab-bench-cal-'));
  const archive = path.join(work, 'bench.zip');
  await makeArchive(archive, SIZE_MB);
  const size = statSync(archive).size;
  const sizeMb = size / 1e6;

  const s3 = BLOB === 's3' ? await startLocalS3('qlab-bench') : undefined;
  const store = await spawnService(process.execPath, [path.join(serviceDir, 'dist/main.js'), '--port', '0'], {
    env: {
      ...(s3 ? { ...s3.env, BLOB_STORE_URL: 's3://qlab-bench/calibration-store' } : {}),
      DATA_DIR: path.join(work, 'data'),
      HOST: '127.0.0.1',
      QIBO_MAX_UPLOAD_BYTES: String(2 * size),
      QIBO_SERVER_CONFIG: path.join(work, 'server.json'),
      QIBO_API_TOKEN: '',
      MQTT_URL: '',
      LOG_LEVEL: 'info',
    },
  });
  const bare = await spawnService(process.execPath, [path.join(__dirname, 'bare-server.mjs'), work]);
  await fetch(`${store.url}/health`);
  const rssStartKb = rssKb(store.child.pid!);
  let storePeakKb = rssStartKb;

  const results = {
    store: { up: [] as number[], down: [] as number[] },
    bare: { up: [] as number[], down: [] as number[] },
  };
  let archiveId = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const order: ('store' | 'bare')[] = round % 2 === 0 ? ['store', 'bare'] : ['bare', 'store'];
    for (const target of order) {
      if (target === 'store') {
        const up = await withRss(store.child.pid!, () =>
          upload(`${store.url}/calibrations/upload`, archive, true),
        );
        const list = (await (await fetch(`${store.url}/calibrations/latest`)).json()) as { id: number };
        archiveId = list.id;
        const down = await withRss(store.child.pid!, () =>
          download(`${store.url}/calibrations/${archiveId}/archive`, size),
        );
        storePeakKb = Math.max(storePeakKb, up.peakKb, down.peakKb);
        results.store.up.push(sizeMb / up.result);
        results.store.down.push(sizeMb / down.result);
      } else {
        results.bare.up.push(sizeMb / (await upload(`${bare.url}/upload`, archive, false)));
        results.bare.down.push(sizeMb / (await download(`${bare.url}/download`, size)));
      }
      process.stdout.write(`round ${round + 1} ${target} done\n`);
    }
  }
  store.child.kill('SIGTERM');
  bare.child.kill('SIGTERM');
  await s3?.close();
  rmSync(work, { recursive: true, force: true });

  const up = { store: median(results.store.up), bare: median(results.bare.up) };
  const down = { store: median(results.store.down), bare: median(results.bare.down) };
  const growthMb = (storePeakKb - rssStartKb) / 1024;
  const fmt = (n: number) => n.toFixed(0).padStart(6);
  const list = (xs: number[]) => xs.map((x) => x.toFixed(0)).join(', ');
  console.log(
    `\ncalibration-store transfer benchmark: ${sizeMb.toFixed(0)} MB archive, ${ROUNDS} rounds, archives in ${BLOB === 's3' ? 'S3 (s3rver)' : 'files'}, medians (MB/s = 10^6 bytes/s)`,
  );
  console.log(`                      upload MB/s   download MB/s   (all rounds: up | down)`);
  console.log(
    `  calibration-store   ${fmt(up.store)}        ${fmt(down.store)}          ${list(results.store.up)} | ${list(results.store.down)}`,
  );
  console.log(
    `  bare Node server    ${fmt(up.bare)}        ${fmt(down.bare)}          ${list(results.bare.up)} | ${list(results.bare.down)}`,
  );
  console.log(
    `  ratio (store/bare)  ${(up.store / up.bare).toFixed(2).padStart(6)}        ${(down.store / down.bare).toFixed(2).padStart(6)}`,
  );
  console.log(
    `  store RSS: ${(rssStartKb / 1024).toFixed(0)} MB at start, peak ${(storePeakKb / 1024).toFixed(0)} MB, growth ${growthMb.toFixed(0)} MB`,
  );
  const checks = [
    [`upload ratio >= 0.7`, up.store / up.bare >= 0.7],
    [`download ratio >= 0.7`, down.store / down.bare >= 0.7],
    [`RSS growth < 100 MB`, growthMb < 100],
  ] as const;
  for (const [what, ok] of checks) console.log(`  target ${what}: ${ok ? 'met' : 'MISSED'}`);
  // For `pnpm bench:report` (issue 19's targets are for the default: files, 200 MB).
  if (BLOB !== 's3')
    recordBench('calibration-store', {
      'store.upload-vs-bare': up.store / up.bare,
      'store.download-vs-bare': down.store / down.bare,
    });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
