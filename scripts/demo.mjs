#!/usr/bin/env node
// `pnpm demo`: one real flow through the gateway of a running stack (`pnpm start` first):
// a calibration upload, a large file in resumable chunks, a job that zips a file and publishes
// it as a result, benchmark rows ingested, then the overview, search and model views and the
// events that passed. Needs the gateway's key: QLAB_API_KEY, else data/gateway/bootstrap-api-key.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';

// Read once: this script is not a turbo task, so its variables are not turbo inputs.
const { env } = process;
const root = path.resolve(import.meta.dirname, '..');
const require = createRequire(path.join(root, 'packages/client/package.json'));
const gateway = (env.QLAB_GATEWAY_URL ?? 'http://127.0.0.1:8080').replace(/\/$/, '');
const keyFile = path.join(env.DATA_DIR ?? path.join(root, 'data'), 'gateway', 'bootstrap-api-key');
const key = env.QLAB_API_KEY ?? (existsSync(keyFile) ? readFileSync(keyFile, 'utf8').trim() : undefined);
if (!key) {
  console.error(
    `No API key: set QLAB_API_KEY or start the stack with \`pnpm start\` (it writes ${keyFile}).`,
  );
  process.exit(1);
}
const client = require(path.join(root, 'packages/client/dist/index.js'));
const headers = { 'X-API-Key': key };
const step = (n, text) => console.log(`\n${n}. ${text}`);
const show = (o) =>
  console.log(
    JSON.stringify(o, null, 2)
      .split('\n')
      .map((l) => `   ${l}`)
      .join('\n'),
  );

async function api(method, p, body, type = 'application/json') {
  const res = await fetch(`${gateway}${p}`, {
    method,
    headers: body === undefined ? headers : { ...headers, ...(type ? { 'content-type': type } : {}) },
    body: body === undefined ? undefined : type === 'application/json' ? JSON.stringify(body) : body,
  });
  const text = await res.text();
  const parsed = text ? JSON.parse(text) : undefined;
  if (!res.ok) throw new Error(`${method} ${p}: ${res.status} ${parsed?.detail ?? text}`);
  return parsed;
}

async function main() {
  const health = await fetch(`${gateway}/health`)
    .then((r) => r.json())
    .catch(() => undefined);
  if (!health) throw new Error(`no gateway at ${gateway}: run \`pnpm start\` first`);
  console.log(`qlab demo against ${gateway}`);

  // Events: everything on qlab/# while the demo runs.
  const events = [];
  const ws = new WebSocket(
    `${gateway.replace(/^http/, 'ws')}/api/events?topic=qlab/%23&api_key=${encodeURIComponent(key)}`,
  );
  ws.onmessage = (m) => {
    const e = JSON.parse(String(m.data));
    if (e.type !== 'subscribed') events.push(e);
  };
  await new Promise((resolve) => {
    ws.onopen = resolve;
    ws.onerror = resolve; // without a broker the demo still runs; it just shows no events
  });

  const dir = mkdtempSync(path.join(tmpdir(), 'qlab-demo-'));
  try {
    const hashID = `demo${Date.now().toString(36)}`;
    step(1, `upload a calibration (hashID ${hashID}) through /api/store`);
    const params = path.join(dir, 'parameters.json');
    writeFileSync(params, JSON.stringify({ nshots: 1024, qubits: { 0: { frequency: 5.1e9 } } }, null, 2));
    const up = await client.calibrationsUpload(hashID, 'demo: first calibration', [params], {
      serverUrl: `${gateway}/api/store`,
      apiToken: key,
      configFile: path.join(dir, 'client.json'),
    });
    show({ id: up.id, hashID: up.hashID, sha256: up.sha256 });

    step(2, 'upload a 64 MiB file in resumable tus chunks through /api/uploads');
    const big = path.join(dir, 'scan.bin');
    writeFileSync(big, randomBytes(64 * 1024 * 1024));
    const tus = await client.tusUploadFile(big, {
      endpoint: `${gateway}/api/uploads/files`,
      apiKey: key,
      chunkSize: 8 * 1024 * 1024,
      resumeFile: path.join(dir, 'tus.json'),
    });
    show({ url: tus.url, bytes: 64 * 1024 * 1024 });

    step(3, 'run a job that zips a file and publishes it as a result (calibration.publish)');
    const form = new FormData();
    form.set('task_type', 'calibration.publish');
    form.set('params', JSON.stringify({ hashID, name: 'demo-result', notes: 'zipped by a job' }));
    form.set('file', new Blob([readFileSync(params)]), 'parameters.json');
    const job = await api('POST', '/api/jobs', form, null);
    let state = job;
    for (let i = 0; i < 100 && !['completed', 'failed', 'cancelled'].includes(state.status); i++) {
      await new Promise((r) => setTimeout(r, 200));
      state = await api('GET', `/api/jobs/${job.job_id}`);
    }
    show({ job_id: state.job_id, status: state.status, output: state.output ?? state.error_message });

    step(4, 'ingest benchmark rows (NDJSON bulk) through /api/db/benchmark');
    const models = ['bert-base-uncased', 'gpt2', 't5-small'];
    const rows = Array.from({ length: 300 }, (_, i) =>
      JSON.stringify({
        model: models[i % 3],
        hardware: i % 2 ? 'cuda' : 'cpu',
        status: i % 10 ? 'completed' : 'failed',
        batch_size: 8,
        latency_ms: 5 + (i % 17),
        throughput: 100 + i,
        tags: ['demo'],
      }),
    ).join('\n');
    show(await api('POST', '/api/db/benchmark/runs/bulk', rows, 'application/x-ndjson'));

    step(5, 'overview of every service (GET /api/db/overview)');
    const o = await api('GET', '/api/db/overview');
    show({
      completed: o.completed,
      missing_services: o.missing_services,
      benchmark_runs: o.benchmark_stats?.total_runs,
      calibrations: o.calibration_stats,
      jobs: o.job_stats?.by_status,
      uploads: o.upload_stats,
      tracker: o.tracker_stats?.total_jobs ?? o.tracker_stats?.notice,
    });

    step(6, 'search across services (POST /api/db/search?query=bert)');
    show((await api('POST', '/api/db/search?query=bert&limit=5')).result_counts);

    step(7, 'one model across the analytics domains (GET /api/db/model/bert-base-uncased)');
    show((await api('GET', '/api/db/model/bert-base-uncased')).overview);

    await new Promise((r) => setTimeout(r, 1000));
    step(8, `events that passed (${events.length})`);
    for (const e of events) console.log(`   ${e.time}  ${e.source}  ${e.type}  ${e.subject ?? ''}`);
  } finally {
    ws.close();
    rmSync(dir, { recursive: true, force: true });
  }
  console.log('\nDone. Everything above went through the gateway with one API key.');
}

main().catch((err) => {
  console.error(`demo failed: ${err.message}`);
  process.exit(1);
});
