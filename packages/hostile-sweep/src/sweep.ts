import {
  keyVariantDrafts,
  type MatrixRow,
  matrixDrafts,
  overrideCheckDrafts,
  renderMatrix,
} from './auth-matrix';
import type { Case } from './cases';
import { createFixtures } from './fixtures';
import type { Draft, GenContext } from './generators';
import { sweepDrafts } from './inputs';
import { Invariants } from './invariants';
import { loadOperations, type Operation } from './openapi';
import { describeWrong, firstToShow, renderGroups, summaryLine } from './report';
import { Runner, type WrongAnswer } from './runner';
import { HostileStack } from './stack';
import { websocketChecks } from './websocket';

export const DEFAULT_SEED = 20_260_601;

export interface SweepOptions {
  seed: number;
  /** `Nx` multiplies the random inputs per class; a plain number is the least number of inputs. */
  runs?: string;
  /** Run only these input ids (from a printed wrong answer). */
  only?: Set<number>;
  /** How many wrong answers to describe in full (default 50). */
  show?: number;
  print: (text: string) => void;
}

export interface SweepResult {
  inputs: number;
  wrong: WrongAnswer[];
  seconds: number;
}

/** Safe methods first and deletes last, so the fixtures live as long as possible. */
const METHOD_ORDER: Record<string, number> = { GET: 0, HEAD: 0, OPTIONS: 0, DELETE: 2 };

function scaledDrafts(
  ops: Operation[],
  base: Omit<GenContext, 'scale'>,
  runs: string | undefined,
): { drafts: Draft[]; scale: number } {
  const m = /^(\d+)x$/i.exec(runs ?? '');
  if (m) {
    const scale = Math.max(1, Number(m[1]));
    return { drafts: sweepDrafts(ops, { ...base, scale }), scale };
  }
  const least = runs ? Number(runs) : 0;
  for (let scale = 1; ; scale++) {
    const drafts = sweepDrafts(ops, { ...base, scale });
    if (drafts.length >= least || scale >= 100) return { drafts, scale };
  }
}

export async function runSweep(repoRoot: string, options: SweepOptions): Promise<SweepResult> {
  const started = Date.now();
  const { print, seed } = options;
  const stack = await HostileStack.start(repoRoot);
  try {
    const fx = await createFixtures(stack);
    const ops = await loadOperations(stack);
    if (ops.missingFromGateway.length > 0)
      throw new Error(`harness: the gateway's merged document lacks ${ops.missingFromGateway.join(', ')}`);
    const all = [...ops.direct, ...ops.gateway];
    const ctx: Omit<GenContext, 'scale'> = {
      fx,
      seed,
      byKey: new Map(all.map((o) => [`${o.via} ${o.method} ${o.template}`, o])),
      portOf: (o) => stack.get(o.via === 'gateway' ? 'gateway' : o.service).port,
    };
    const { drafts: sweep, scale } = scaledDrafts(all, ctx, options.runs);
    const gatewayPort = stack.get('gateway').port;
    const matrix = matrixDrafts(ops.gateway, fx);
    const keyPaths = keyVariantDrafts(ops.gateway, fx, gatewayPort);
    const overrides = overrideCheckDrafts(ops.gateway, stack);
    const ordered = [
      ...matrix.drafts,
      ...keyPaths.drafts,
      ...overrides,
      ...sweep
        .map((d, i) => ({ d, i }))
        .sort(
          (a, b) =>
            (METHOD_ORDER[a.d.request.method] ?? 1) - (METHOD_ORDER[b.d.request.method] ?? 1) || a.i - b.i,
        )
        .map((x) => x.d),
    ];
    const cases: Case[] = ordered.map((d, i) =>
      Object.assign(d, {
        id: i + 1,
        to: d.op.via === 'gateway' ? ('gateway' as const) : d.op.service,
        lane: d.op.service,
      }),
    );
    const chosen = options.only ? cases.filter((c) => options.only!.has(c.id)) : cases;
    const perClass = new Map<string, number>();
    for (const c of chosen) perClass.set(c.cls, (perClass.get(c.cls) ?? 0) + 1);
    print(
      `hostile sweep seed ${seed} (HOSTILE_SEED), ${scale}x (HOSTILE_RUNS): ${ops.direct.length} service and ${ops.gateway.length} gateway operations, ${chosen.length} inputs planned`,
    );
    print(`  per class: ${[...perClass].map(([k, v]) => `${k} ${v}`).join(', ')}`);

    const invariants = new Invariants(stack);
    invariants.recordEscapeTargets();
    const runner = new Runner(stack, invariants, print);
    await runner.run(chosen);
    let inputs = runner.inputs;
    if (!options.only) inputs += await websocketChecks(stack, runner);
    for (const e of invariants.escapes()) runner.flagRun('data dir', 'file outside the service folders', e);

    const wrongIds = new Set(runner.wrong.flatMap((w) => (w.c ? [w.c.id] : [])));
    const table = (title: string, rows: MatrixRow[]) =>
      `${title}\n${renderMatrix(rows, runner.results, wrongIds)}`;
    if (!options.only) {
      print(table('authorization matrix (gateway operations × key; "!" = wrong answer)', matrix.rows));
      print(table('/api/keys path variants × key', keyPaths.rows));
    }
    if (runner.wrong.length > 0)
      print(`distinct wrong answers (inputs, route | class | cause):\n${renderGroups(runner.wrong)}`);
    print(summaryLine(inputs, runner.wrong.length));
    for (const w of firstToShow(runner.wrong, options.show)) print(describeWrong(w, stack, seed, scale));
    return { inputs, wrong: runner.wrong, seconds: Math.round((Date.now() - started) / 1000) };
  } finally {
    await stack.stop();
  }
}
