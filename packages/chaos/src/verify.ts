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
  /**
   * Events missing for a subscriber when they were due while Mosquitto was SIGKILLed: the broker
   * had acknowledged them and died before it delivered or saved them. Documented as not
   * guaranteed (README, Failure behaviour); reported, not counted as lost.
   */
  lostWithBroker: string[];
  /** Jobs a worker fault struck mid-run whose lease then ran out (and that another worker finished). */
  struckJobs: number;
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
  gaveUp: { at: number; what: string }[],
): Promise<Verdict> {
  let failedJobs = 0;
  let jobsSeen = 0;
  const v: Verdict = {
    items: ledger.length,
    lost: [],
    duplicated: [],
    lostWithBroker: [],
    failures: [],
    struckJobs: 0,
  };
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
  const brokerDown = faults
    .filter((f) => f.target === 'mosquitto')
    .map((f) => [f.start - 1000, f.end + 3000] as const);
  /** An event that never came: lost with the broker if it was due while the broker died. */
  const eventMissing = (dueAt: number, what: string) => {
    if (brokerDown.some(([s, e]) => dueAt >= s && dueAt <= e)) v.lostWithBroker.push(what);
    else lose(dueAt, what);
  };
  /** The fault an item was acknowledged during or just after, to tell what lost it. */
  const near = (at: number) => {
    const f = [...faults].reverse().find((x) => x.start <= at);
    if (!f) return 'before any fault';
    return at <= f.end ? `during "${f.kind}"` : `${((at - f.end) / 1000).toFixed(1)} s after "${f.kind}"`;
  };
  const filesDir = path.join(stack.dataDir, 'chunked-upload', 'files');
  const download = async (kind: 'calibration' | 'result', selector: Record<string, string>) => {
    const res = await get(
      `${stack.gatewayUrl}/api/store/${kind === 'calibration' ? 'calibrations' : 'results'}/download`,
      {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(selector),
      },
    );
    if (!res.ok) return res.status;
    return Buffer.from(((await res.json()) as { data_b64: string }).data_b64, 'base64');
  };
  const countEvents = (type: string, needle: string) =>
    events.of(type).filter((e) => e.raw.includes(needle)).length;

  for (const item of ledger) {
    if (item.kind === 'tus' || item.kind === 'indexedcp') {
      // A creation retried after a lost answer gets a suffixed name (the first one holds the
      // name until it expires): the stored name is the one its upload.completed event gives.
      const completed = events
        .of('upload.completed')
        .map((e) => (JSON.parse(e.raw) as { data: { filename: string; clientFilename: string } }).data)
        .filter((d) => d.clientFilename === item.name);
      const stored = [...new Set(completed.map((d) => d.filename))];
      if (completed.length === 0) eventMissing(item.at, `upload.completed for ${item.name}: never delivered`);
      if (completed.length > 1)
        v.duplicated.push(`upload.completed for ${item.name}: ${completed.length} distinct events`);
      const candidates = stored.length > 0 ? stored : [item.name];
      const whole = candidates.filter((f) => {
        const file = path.join(filesDir, f);
        return existsSync(file) && sha256(readFileSync(file)) === item.sha256;
      });
      if (whole.length === 0)
        lose(
          item.at,
          `${item.kind} upload ${item.name}: no file with its bytes (looked for ${candidates.join(', ')})`,
        );
    } else if (item.kind === 'calibration' || item.kind === 'result') {
      const selector: Record<string, string> =
        item.kind === 'calibration' ? { hashID: item.hashID } : { hashID: item.hashID, name: item.name };
      const body = await download(item.kind, selector);
      if (typeof body === 'number') lose(item.at, `${item.kind} ${item.hashID}: download ${body}`);
      else if (sha256(body) !== item.sha256) lose(item.at, `${item.kind} ${item.hashID}: archive differs`);
      const type = item.kind === 'calibration' ? 'calibration.uploaded' : 'result.uploaded';
      const n = countEvents(type, `"${item.hashID}"`);
      if (n === 0) eventMissing(item.at, `${type} for ${item.hashID}: never delivered`);
      if (n > 1) v.duplicated.push(`${type} for ${item.hashID}: ${n} distinct events`);
    } else if (item.kind === 'job') {
      const res = await get(`${stack.gatewayUrl}/api/jobs/${item.jobId}`);
      const job = res.ok
        ? ((await res.json()) as {
            status: string;
            output?: { files?: { sha256: string }[] };
            errors?: unknown[];
            completed_at?: number | null;
          })
        : undefined;
      jobsSeen++;
      const made = await get(`${stack.gatewayUrl}/api/jobs?created_by=${encodeURIComponent(item.createdBy)}`);
      const copies = made.ok ? ((await made.json()) as { total: number }).total : 1;
      if (copies > 1) v.duplicated.push(`job ${item.jobId}: its create queued ${copies} jobs`);
      if (!job) lose(item.at, `job ${item.jobId}: ${res.status}`);
      else if (job.status === 'completed') {
        if (item.taskType === 'checksum.sha256' && job.output?.files?.[0]?.sha256 !== item.inputSha256)
          lose(item.at, `job ${item.jobId}: wrong output`);
        if (item.publishes) {
          // Its side effect, once: the result it published, and only one of them.
          const list = await get(
            `${stack.gatewayUrl}/api/store/results/list?hashID=${encodeURIComponent(item.publishes.hashID)}`,
          );
          const items = list.ok ? (((await list.json()) as { items?: unknown[] }).items ?? []) : [];
          if (items.length === 0) lose(item.at, `job ${item.jobId}: calibration.publish left no result`);
          if (items.length > 1)
            v.duplicated.push(`job ${item.jobId}: calibration.publish published ${items.length} results`);
        }
        const done = events.of('job.completed').filter((e) => e.subject === `jobs/${item.jobId}`).length;
        if (done === 0)
          eventMissing(job.completed_at ?? item.at, `job.completed for ${item.jobId}: never delivered`);
        if (done > 1) v.duplicated.push(`job ${item.jobId}: completed ${done} times`);
      } else if (job.status === 'error') {
        failedJobs++;
        if (!job.errors?.length) v.failures.push(`job ${item.jobId}: failed without an error history`);
      } else lose(item.at, `job ${item.jobId}: still ${job.status} after the settle time`);
    } else if (item.kind === 'analytics') {
      // Every row as it was sent, and the model's summary counting each row once.
      for (const row of item.rows) {
        const res = await get(`${stack.gatewayUrl}/api/db/test/run/${row.run_id}`);
        const got = res.ok ? ((await res.json()) as Record<string, unknown>) : undefined;
        if (!got) lose(item.at, `analytics run ${row.run_id}: ${res.status}`);
        else if (Object.entries(row).some(([k, want]) => got[k] !== want))
          lose(item.at, `analytics run ${row.run_id}: read back ${JSON.stringify(got).slice(0, 200)}`);
      }
      const res = await get(`${stack.gatewayUrl}/api/db/test/models/${encodeURIComponent(item.model)}`);
      const summary = res.ok ? ((await res.json()) as { total?: number; avg_duration_ms?: number }) : {};
      const avg = item.rows.reduce((a, r) => a + r.duration_ms, 0) / item.rows.length;
      if (summary.total !== undefined && summary.total > item.rows.length)
        v.duplicated.push(
          `analytics model ${item.model}: ${summary.total} rows counted, ${item.rows.length} sent`,
        );
      else if (summary.total !== item.rows.length || Math.abs((summary.avg_duration_ms ?? 0) - avg) > 1e-6)
        lose(item.at, `analytics model ${item.model}: summary ${JSON.stringify(summary).slice(0, 200)}`);
      const n = countEvents('run.ingested', item.rows[0]!.run_id);
      if (n === 0) eventMissing(item.at, `run.ingested for ${item.rows[0]!.run_id}: never delivered`);
      if (n > 1) v.duplicated.push(`run.ingested for ${item.rows[0]!.run_id}: ${n} distinct events`);
    }
  }

  // A fault's window ends 2 s after every service was ready again; the schedule leaves more than
  // that between faults, so the quiet stretches between them are judged.
  const windows = faults.map((f) => [f.start, f.end + (f.recoveryMs ?? 30_000) + 2000] as const);
  const inWindow = (at: number) => windows.some(([s, e]) => at >= s && at <= e);
  for (const g of gaveUp.filter((g) => !inWindow(g.at)).slice(0, 10))
    v.failures.push(`a client gave up outside any fault window: ${g.what}`);
  // Every kind of operation must have been acknowledged: a kind that always fails is no pass.
  const kinds = ['tus', 'indexedcp', 'calibration', 'result', 'job', 'analytics'];
  for (const k of kinds)
    if (!ledger.some((i) => i.kind === k))
      v.failures.push(`no ${k} operation was acknowledged in the whole run`);
  for (const t of ['checksum.sha256', 'archive.zip', 'calibration.publish'])
    if (!ledger.some((i) => i.kind === 'job' && i.taskType === t))
      v.failures.push(`no ${t} job was accepted`);
  if (failedJobs > Math.max(2, jobsSeen * 0.1))
    v.failures.push(`${failedJobs} of ${jobsSeen} jobs ended in error: more than faults explain`);
  const outside = answers.filter((a) => (typeof a.status !== 'number' || a.status >= 500) && !inWindow(a.at));
  for (const a of outside.slice(0, 10)) v.failures.push(`${a.op}: ${a.status} outside any fault window`);
  if (outside.length > 10) v.failures.push(`… and ${outside.length - 10} more answers like these`);
  // A worker struck mid-job: that job's history shows its lease ran out under that worker (or
  // it finished in the moment before the strike). Either way it must have ended well: the
  // ledger checks above judge that; here it is counted, so a run shows its faults hit.
  for (const f of faults.filter((x) => x.hitJob)) {
    const res = await get(`${stack.gatewayUrl}/api/jobs/${f.hitJob}`);
    const job = res.ok ? ((await res.json()) as { errors?: { message: string }[] }) : undefined;
    if (job?.errors?.some((e) => e.message.includes(`lease expired (worker ${f.target}`))) v.struckJobs++;
  }
  for (const f of faults)
    if (f.error) v.failures.push(`${f.kind} (${f.target}) could not be injected: ${f.error}`);
  for (const f of faults)
    if (f.recoveryMs === undefined)
      v.failures.push(`${f.kind} (${f.target}): not every service healthy within 30 s`);
  for (const id of events.handledTwice.slice(0, 10)) v.duplicated.push(`event ${id}: its handler ran twice`);
  for (const p of stack.procs.values()) {
    for (const c of p.crashes) v.failures.push(`${p.name} crashed: ${c}`);
    if (p.internalErrors.length > 0)
      v.failures.push(`${p.name}: ${p.internalErrors.length} answers 500, the first: ${p.internalErrors[0]}`);
  }
  return v;
}
