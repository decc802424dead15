import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import type { EventLedger } from './event-ledger';
import type { FaultRecord } from './faults';
import type { ChaosStack } from './stack';
import { WRITE_KEY } from './stack';
import { type Acknowledged, type Answer, sha256 } from './workload';

export interface Verdict {
  items: number;
  lost: string[];
  duplicated: string[];
  /** Other broken promises: 5xx outside faults, crashes, slow recovery. */
  failures: string[];
}

const get = async (url: string, init: RequestInit = {}) =>
  fetch(url, {
    ...init,
    headers: { 'X-API-Key': WRITE_KEY, ...(init.headers as object) },
    signal: AbortSignal.timeout(15_000),
  });

/** Jobs still queued or running: the suite waits for these to end before it judges. */
export async function unfinishedJobs(stack: ChaosStack, ledger: Acknowledged[]): Promise<number> {
  let open = 0;
  for (const item of ledger) {
    if (item.kind !== 'job') continue;
    const res = await get(`${stack.gatewayUrl}/api/jobs/${item.jobId}`).catch(() => undefined);
    const job = res?.ok ? ((await res.json()) as { status: string }) : undefined;
    if (!job || job.status === 'queued' || job.status === 'processing') open++;
  }
  return open;
}

/** Checks every acknowledged operation against what the stack now holds and what it published. */
export async function verify(
  stack: ChaosStack,
  ledger: Acknowledged[],
  events: EventLedger,
  answers: Answer[],
  faults: FaultRecord[],
): Promise<Verdict> {
  const v: Verdict = { items: ledger.length, lost: [], duplicated: [], failures: [] };
  // Events still waiting in a service's outbox were never lost, but never sent either.
  const db = new pg.Client({ connectionString: stack.pg.url });
  await db.connect();
  try {
    for (const schema of ['calibration_store', 'chunked_upload', 'job_worker', 'quantum_tracker']) {
      const r = await db
        .query(`select count(*)::int as n from ${schema}.event_outbox`)
        .catch(() => undefined);
      if (r && r.rows[0].n > 0)
        v.failures.push(`${schema}: ${r.rows[0].n} events still in its outbox after the settle time`);
    }
  } finally {
    await db.end();
  }
  const lose = (at: number, what: string) => v.lost.push(`${what} (acknowledged ${near(at)})`);
  /** The fault an item was acknowledged during or just after, to tell what lost it. */
  const near = (at: number) => {
    const f = [...faults].reverse().find((x) => x.start <= at);
    if (!f) return 'before any fault';
    return at <= f.end ? `during "${f.kind}"` : `${((at - f.end) / 1000).toFixed(1)} s after "${f.kind}"`;
  };
  const filesDir = path.join(stack.dataDir, 'chunked-upload', 'files');
  const countEvents = (type: string, needle: string) =>
    events.of(type).filter((e) => e.raw.includes(needle)).length;

  for (const item of ledger) {
    if (item.kind === 'tus' || item.kind === 'indexedcp') {
      const file = path.join(filesDir, item.name);
      if (!existsSync(file)) lose(item.at, `${item.kind} upload ${item.name}: no file`);
      else if (sha256(readFileSync(file)) !== item.sha256)
        lose(item.at, `${item.kind} upload ${item.name}: bytes differ`);
      const n = countEvents('upload.completed', `"filename":"${item.name}"`);
      if (n === 0) lose(item.at, `upload.completed for ${item.name}: never delivered`);
      if (n > 1) v.duplicated.push(`upload.completed for ${item.name}: ${n} distinct events`);
    } else if (item.kind === 'calibration') {
      const res = await get(`${stack.gatewayUrl}/api/store/calibrations/download`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ hashID: item.hashID }),
      });
      const body = res.ok ? ((await res.json()) as { data_b64: string }) : undefined;
      if (!body) lose(item.at, `calibration ${item.hashID}: download ${res.status}`);
      else if (sha256(Buffer.from(body.data_b64, 'base64')) !== item.sha256)
        lose(item.at, `calibration ${item.hashID}: archive differs`);
      const n = countEvents('calibration.uploaded', item.hashID);
      if (n === 0) lose(item.at, `calibration.uploaded for ${item.hashID}: never delivered`);
      if (n > 1) v.duplicated.push(`calibration.uploaded for ${item.hashID}: ${n} distinct events`);
    } else if (item.kind === 'job') {
      const res = await get(`${stack.gatewayUrl}/api/jobs/${item.jobId}`);
      const job = res.ok
        ? ((await res.json()) as {
            status: string;
            output?: { files?: { sha256: string }[] };
            errors?: unknown[];
          })
        : undefined;
      if (!job) lose(item.at, `job ${item.jobId}: ${res.status}`);
      else if (job.status === 'completed') {
        if (job.output?.files?.[0]?.sha256 !== item.inputSha256)
          lose(item.at, `job ${item.jobId}: wrong output`);
        const done = events.of('job.completed').filter((e) => e.subject === `jobs/${item.jobId}`).length;
        if (done === 0) lose(item.at, `job.completed for ${item.jobId}: never delivered`);
        if (done > 1) v.duplicated.push(`job ${item.jobId}: completed ${done} times`);
      } else if (job.status === 'error') {
        if (!job.errors?.length) v.failures.push(`job ${item.jobId}: failed without an error history`);
      } else lose(item.at, `job ${item.jobId}: still ${job.status} after the settle time`);
    } else if (item.kind === 'analytics') {
      for (const id of item.runIds) {
        const res = await get(`${stack.gatewayUrl}/api/db/test/run/${id}`);
        await res.body?.cancel();
        if (res.status !== 200) lose(item.at, `analytics run ${id}: ${res.status}`);
      }
      const n = countEvents('run.ingested', item.runIds[0]!);
      if (n === 0) lose(item.at, `run.ingested for ${item.runIds[0]}: never delivered`);
      if (n > 1) v.duplicated.push(`run.ingested for ${item.runIds[0]}: ${n} distinct events`);
    }
  }

  const windows = faults.map((f) => [f.start, f.end + (f.recoveryMs ?? 30_000) + 5000] as const);
  const outside = answers.filter(
    (a) => (a.status === 'network' || a.status >= 500) && !windows.some(([s, e]) => a.at >= s && a.at <= e),
  );
  for (const a of outside.slice(0, 10)) v.failures.push(`${a.op}: ${a.status} outside any fault window`);
  if (outside.length > 10) v.failures.push(`… and ${outside.length - 10} more answers like these`);
  for (const f of faults)
    if (f.recoveryMs === undefined)
      v.failures.push(`${f.kind} (${f.target}): not every service healthy within 30 s`);
  for (const p of stack.procs.values()) {
    for (const c of p.crashes) v.failures.push(`${p.name} crashed: ${c}`);
    if (p.internalErrors.length > 0)
      v.failures.push(`${p.name}: ${p.internalErrors.length} answers 500, the first: ${p.internalErrors[0]}`);
  }
  return v;
}
