import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { PrivateMosquitto, PrivatePostgres } from './brokers';
import { EventLedger } from './event-ledger';
import { type FaultRecord, runFaults, schedule } from './faults';
import { FaultyLink } from './links';
import { Rng } from './rng';
import { ChaosStack } from './stack';
import { unfinishedJobs, verify } from './verify';
import { Workload } from './workload';

const USAGE = `usage: pnpm chaos [--quick] [--seed N] [--minutes M] [--keep]

  --quick     every fault kind once (about 3 minutes; what CI runs)
  --seed N    replay a schedule and workload (printed by every run)
  --minutes M how long the full run injects faults (default 10)
  --keep      leave the temp folder (data, logs) for a look afterwards`;

const log = (line: string) => process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean' },
      seed: { type: 'string' },
      minutes: { type: 'string' },
      keep: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const seed = values.seed !== undefined ? Number(values.seed) : Math.floor(Math.random() * 2 ** 31);
  if (!Number.isInteger(seed)) throw new Error(`--seed: "${values.seed}" is not an integer`);
  const quick = values.quick === true;
  const minutes = Number(values.minutes ?? 10);
  const rng = new Rng(seed);
  const faults = schedule(rng, quick, minutes * 60_000);
  log(`chaos: seed ${seed} (replay with --seed ${seed}${quick ? ' --quick' : ''}), ${faults.length} faults:`);
  log(`  ${faults.map((f) => `${f.kind} (${f.target})`).join(', ')}`);

  const repoRoot = path.resolve(__dirname, '../../..');
  const root = mkdtempSync(path.join(tmpdir(), 'qlab-chaos-'));
  const pg = await PrivatePostgres.start(root);
  const mosquitto = await PrivateMosquitto.start(root, repoRoot);
  const dbLink = await FaultyLink.open('postgres', pg.port);
  const brokerLink = await FaultyLink.open('mosquitto', mosquitto.port);
  const stack = new ChaosStack(repoRoot, path.join(root, 'data'), pg, mosquitto, dbLink, brokerLink);
  const events = new EventLedger();
  let exitCode = 1;
  try {
    log(`stack: PostgreSQL :${pg.port}, Mosquitto :${mosquitto.port}, starting the services…`);
    await stack.start();
    // Through the broker link: a cut takes the subscriber away too, and its session catches up.
    await events.start(`mqtt://127.0.0.1:${brokerLink.port}`, `chaos-ledger-${seed}`);
    const workload = new Workload(stack.gatewayUrl, path.join(root, 'clients'), new Rng(seed + 1));
    stack.workload = workload;
    workload.start(3);
    log('workload running; faults begin');
    if (!stack.uploadDiskMounted)
      log('upload disk full: not injected (a tmpfs of its own needs root); the fault does nothing');
    // More than a window's 2 s grace between faults, so the quiet stretches are judged.
    const records: FaultRecord[] = await runFaults(stack, faults, 8000, log);
    await sleep(5000);
    log('faults over: stopping the workload and letting the stack settle');
    await workload.stop();
    const settleUntil = Date.now() + 120_000;
    while (Date.now() < settleUntil && (await unfinishedJobs(stack, workload.ledger)) > 0) await sleep(1000);
    // Events still in outboxes or in flight: give them a moment to arrive.
    await sleep(5000);
    const verdict = await verify(
      stack,
      workload.ledger,
      events,
      workload.answers,
      records,
      workload.clientErrors,
    );
    report(records, workload.answers, verdict, events);
    for (const e of workload.clientErrors.slice(0, 10)) log(`client gave up: ${e.what}`);
    const f = records.length;
    log(
      `chaos: ${f} faults, ${verdict.items} items, ${verdict.lost.length} lost, ${verdict.duplicated.length} duplicated`,
    );
    exitCode =
      verdict.lost.length === 0 && verdict.duplicated.length === 0 && verdict.failures.length === 0 ? 0 : 1;
    if (exitCode !== 0) log(`chaos: FAILED (seed ${seed})`);
  } finally {
    await events.stop().catch(() => undefined);
    await stack.stop();
    await dbLink.close();
    await brokerLink.close();
    await mosquitto.stop();
    await pg.stop();
    if (values.keep) log(`kept ${root}`);
    else rmSync(root, { recursive: true, force: true });
  }
  return exitCode;
}

function report(
  records: FaultRecord[],
  answers: { at: number; status: number | 'network' | 'incomplete' }[],
  verdict: {
    lost: string[];
    duplicated: string[];
    lostWithBroker: string[];
    failures: string[];
    struckJobs: number;
  },
  events: EventLedger,
): void {
  const byKind = new Map<string, FaultRecord[]>();
  for (const r of records) byKind.set(r.kind, [...(byKind.get(r.kind) ?? []), r]);
  const rows = [...byKind].map(([kind, rs]) => {
    const rec = rs.map((r) => r.recoveryMs).filter((x): x is number => x !== undefined);
    const errors = answers.filter(
      (a) =>
        (typeof a.status !== 'number' || a.status >= 500) &&
        rs.some((r) => a.at >= r.start && a.at <= r.end + (r.recoveryMs ?? 30_000) + 5000),
    ).length;
    const worst = rec.length ? `${(Math.max(...rec) / 1000).toFixed(1)} s` : 'never';
    return [kind, String(rs.length), worst, String(errors)];
  });
  const head = ['fault', 'count', 'recovery (worst)', 'errors seen by clients'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  log(line(head));
  log(line(widths.map((w) => '-'.repeat(w))));
  for (const r of rows) log(line(r));
  log(
    `requests: ${answers.length}; events: ${events.byId.size} handled, ${events.duplicatesDropped} repeated deliveries dropped by id`,
  );
  const kills = records.filter((r) => r.kind === 'SIGKILL a service');
  log(
    `service kills that struck a request under way: ${kills.filter((r) => r.midRequest).length} of ${kills.length}`,
  );
  log(
    `worker faults that struck a job mid-run (its lease ran out, another worker finished it): ${verdict.struckJobs}`,
  );
  if (verdict.lostWithBroker.length > 0)
    log(
      `${verdict.lostWithBroker.length} events were due while Mosquitto was SIGKILLed and never came (not guaranteed: README, Failure behaviour), e.g. ${verdict.lostWithBroker[0]}`,
    );
  for (const l of verdict.lost.slice(0, 20)) log(`LOST ${l}`);
  for (const d of verdict.duplicated.slice(0, 20)) log(`DUPLICATED ${d}`);
  for (const f of verdict.failures.slice(0, 20)) log(`FAILED ${f}`);
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`chaos: ${(err as Error).stack ?? err}\n`);
    process.exit(1);
  },
);
