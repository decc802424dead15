import type { Case } from './cases';
import { describeResult, judge, type Problem } from './checks';
import type { Invariants } from './invariants';
import { type RawRequest, type RawResult, send } from './raw-http';
import type { HostileStack, ServiceName } from './stack';

/** A wrong answer: the input (when one is to blame), why it is wrong, and what the server logged meanwhile. */
export interface WrongAnswer {
  c?: Case;
  /** The request, when no case carries it (WebSocket checks). */
  request?: RawRequest;
  /** Route and input class for inputs; a description for findings of the whole run. */
  where: string;
  cls: string;
  cause: string;
  detail: string;
  logs: string[];
}

const HEALTH_EVERY = 25;
const GRACE_MS = 2000;
const PARK_AFTER_MS = 1000;
const MAX_PARKED = 16;

interface Sent {
  c: Case;
  started: number;
  done?: number;
}

interface Done {
  c: Case;
  result: RawResult;
  problems: Problem[];
  t0: number;
  t1: number;
}

/** Whether `p` settles within `ms` (the timer is cleared, so nothing is left pending). */
async function finishesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((r) => {
    timer = setTimeout(() => r(false), ms);
  });
  try {
    return await Promise.race([p.then(() => true), late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Whether counts must be unchanged after this input: a refusal, an input without the right
 * key, or no answer at all (except on tus, which keeps what an interrupted body brought).
 */
function judgedByCounts(d: Done, lane: ServiceName): boolean {
  const r = d.result;
  if (d.c.expect.noChange) return true;
  if (r.kind === 'answer') return r.status >= 400 && r.status < 500;
  return lane !== 'chunked-upload';
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A request that could change something: judged against counts and leftovers. */
function mayWrite(c: Case): boolean {
  const r = c.request;
  return (
    !['GET', 'HEAD'].includes(r.method) ||
    r.body !== undefined ||
    r.headers.some(([n]) => n.toLowerCase() === 'x-http-method-override')
  );
}

/**
 * Runs cases lane by lane: lanes (one per service) run side by side, the cases of a lane one
 * at a time, so a change in a service's counts or files belongs to exactly one input.
 */
export class Runner {
  readonly wrong: WrongAnswer[] = [];
  readonly results = new Map<number, RawResult>();
  inputs = 0;
  private readonly restarting = new Map<ServiceName, Promise<void>>();
  private readonly seenExits = new Map<ServiceName, number>();
  private readonly reported = new Set<string>();
  /** Inputs sent lately, per service they reach (the gateway and the one behind it). */
  private readonly recent = new Map<ServiceName, Sent[]>();
  /** Inputs that were in flight when a service crashed under another input: their answers say so. */
  private readonly witnesses = new Map<number, string>();
  private replaying = false;
  private readonly lastCrash = new Map<ServiceName, number>();

  private aborted = false;
  private readonly started = Date.now();

  constructor(
    private readonly stack: HostileStack,
    private readonly invariants: Invariants,
    private readonly print: (line: string) => void,
  ) {
    for (const name of stack.services.keys()) this.seenExits.set(name, 0);
  }

  async run(cases: Case[]): Promise<void> {
    const lanes = new Map<ServiceName, Case[]>();
    for (const c of cases) {
      const list = lanes.get(c.lane) ?? [];
      list.push(c);
      lanes.set(c.lane, list);
    }
    const progress = setInterval(
      () =>
        this.print(
          `… ${this.inputs} of ${cases.length} inputs sent, ${this.wrong.length} wrong answers so far`,
        ),
      30_000,
    );
    try {
      // A harness error stops every lane (so none restarts a service the stack is stopping), then surfaces.
      const settled = await Promise.allSettled(
        [...lanes].map(([lane, list]) =>
          this.runLane(lane, list).catch((err) => {
            this.aborted = true;
            throw err;
          }),
        ),
      );
      const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    } finally {
      clearInterval(progress);
    }
  }

  private flag(
    c: Case | undefined,
    problem: Problem,
    from: number,
    to: number,
    services: ServiceName[],
  ): void {
    const logs = services.flatMap((s) =>
      this.stack.logBetween(s, from, to + 50).map((l) => `[${s}] ${l.slice(0, 400)}`),
    );
    this.wrong.push({
      c,
      where: c ? c.op.key : 'whole run',
      cls: c ? c.cls : 'invariant',
      cause: problem.cause,
      detail: problem.detail + (c ? (this.witnesses.get(c.id) ?? '') : ''),
      logs: logs.slice(-8),
    });
  }

  /** Notices a dead service, blames the input that was last (or is now) on it, and starts it again. */
  private async ensureUp(name: ServiceName): Promise<boolean> {
    const pending = this.restarting.get(name);
    if (pending) {
      await pending;
      return true;
    }
    const p = this.stack.get(name);
    const dead = !this.stack.alive(name);
    if (!dead && p.exits.length === this.seenExits.get(name)) return false;
    const restart = (async () => {
      const exit = p.exits[p.exits.length - 1];
      this.seenExits.set(name, p.exits.length);
      const how = exit ? `code ${exit.code}, signal ${exit.signal}` : 'unknown';
      const at = exit?.at ?? Date.now();
      const detail = `${name} exited (${how}); last log lines:\n${this.stack.logTail(name, 12)}`;
      this.lastCrash.set(name, Date.now());
      if (dead) await this.stack.restart(name);
      this.seenExits.set(name, this.stack.get(name).exits.length);
      // Candidates: inputs in flight, or answered just before the exit was seen (a wrapper
      // outlives the server by a moment).
      const around = this.onService(name)
        .filter((r) => r.done === undefined || at - r.done < 1000)
        .sort((x, y) => y.started - x.started);
      // Newest first: a crash follows its input closely, and inputs parked long before it are
      // slow to replay (they hang) and rarely the cause.
      const candidates = around.filter((r) => r.started <= at).map((r) => r.c);
      let blamed = candidates.length === 1 ? candidates[0] : undefined;
      let note = '';
      if (candidates.length > 1) {
        blamed = await this.replay(name, candidates);
        note = blamed
          ? ` (found by sending each of the ${candidates.length} inputs then on ${name} again, alone: ${candidates.map((c) => `#${c.id}`).join(', ')})`
          : ` (not reproduced alone; one of ${candidates.map((c) => `#${c.id}`).join(', ')})`;
        blamed ??= candidates[0];
      }
      this.flag(blamed, { cause: `${name} process exited`, detail: detail + note }, 0, 0, []);
      for (const { c } of around)
        if (c !== blamed)
          this.witness(c, ` (in flight when ${name} crashed, which is blamed on #${blamed?.id})`);
      // What the dead process left half-written is the crash's doing.
      const left = await this.leftovers(name, true);
      if (left.length > 0)
        this.flag(
          blamed,
          { cause: 'leftover files', detail: `after the crash: ${left.join('\n')}` },
          0,
          0,
          [],
        );
    })();
    this.restarting.set(name, restart);
    try {
      await restart;
    } finally {
      this.restarting.delete(name);
    }
    return true;
  }

  private onService(name: ServiceName): Sent[] {
    return (this.recent.get(name) ?? []).filter((r) => r.done === undefined || Date.now() - r.done < 5000);
  }

  /**
   * Sends each candidate again, alone, and returns the first after which the service dies
   * (starting it again); undefined when none does. Replays are diagnosis, not inputs.
   */
  private async replay(name: ServiceName, candidates: Case[]): Promise<Case | undefined> {
    if (this.replaying) return undefined;
    this.replaying = true;
    try {
      for (const c of candidates) {
        const exits = this.stack.get(name).exits.length;
        await send(this.stack.get(c.to).port, c.request, 3000);
        await sleep(300);
        if (!this.stack.alive(name) || this.stack.get(name).exits.length > exits) {
          if (!this.stack.alive(name)) await this.stack.restart(name);
          this.seenExits.set(name, this.stack.get(name).exits.length);
          return c;
        }
      }
      return undefined;
    } finally {
      this.replaying = false;
    }
  }

  /** Notes on an input (and on what was already flagged for it) that a crash under another input hit it. */
  private witness(c: Case, note: string): void {
    this.witnesses.set(c.id, note);
    for (const w of this.wrong) if (w.c === c && !w.detail.endsWith(note)) w.detail += note;
  }

  /**
   * Counts, or undefined while the service cannot answer: a crash is judged on its own (its
   * tsx wrapper may outlive the dead server by a moment, so "alive" is not yet false).
   */
  private async counts(lane: ServiceName): Promise<string | undefined> {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        return await this.invariants.counts(lane);
      } catch {
        if (!this.stack.alive(lane)) return undefined;
        await sleep(300);
      }
    }
    return undefined;
  }

  /** Leftovers that are still there after a short grace (a service may clean up just after it answers). */
  private async leftovers(lane: ServiceName, deep: boolean): Promise<string[]> {
    const look = async () => {
      const found = [
        ...this.invariants.quickLeftovers(lane),
        ...(deep ? await this.invariants.deepLeftovers(lane) : []),
      ];
      return found.filter((f) => !this.reported.has(f));
    };
    let found = await look();
    for (let waited = 0; found.length > 0 && waited < GRACE_MS; waited += 100) {
      await sleep(100);
      found = await look();
    }
    for (const f of found) this.reported.add(f);
    return found;
  }

  /**
   * One lane, one input at a time. An input that has no answer after a second is parked (the
   * next ones go on meanwhile, up to a few parked at once), so a route that hangs costs its
   * 10 s once per lane rather than once per input. Counts and leftovers are judged whenever
   * nothing is in flight: for one input, or for the inputs that overlapped a parked one.
   */
  private async runLane(lane: ServiceName, cases: Case[]): Promise<void> {
    await this.ensureUp(lane);
    let before = await this.counts(lane);
    const parked = new Set<Promise<void>>();
    let group: Done[] = [];
    const servicesOf = (c: Case): ServiceName[] => (c.to === lane ? [lane] : [c.to, lane]);

    const settle = async () => {
      const g = group;
      group = [];
      if (g.length === 0) return;
      const ids =
        g.length > 1
          ? ` (judged together with ${g.length - 1} inputs that overlapped a slow one: ${g.map((d) => `#${d.c.id}`).join(', ')})`
          : '';
      // Blame an input without an answer first: a hung request is the likeliest to leave something behind.
      const culprit = (list: Done[]) => list.find((d) => d.result.kind !== 'answer') ?? list[0];
      if (this.stack.alive(lane) && before !== undefined) {
        const after = await this.counts(lane);
        const judged = g.filter((d) => judgedByCounts(d, lane));
        if (after !== undefined && after !== before && judged.length === g.length) {
          const d = culprit(judged)!;
          const refused = d.result.kind === 'answer' && d.result.status >= 400;
          d.problems.push({
            cause: refused
              ? 'counts changed although refused'
              : d.c.expect.noChange
                ? 'counts changed without the right key'
                : 'counts changed without an answer',
            detail: `answer ${describeResult(d.result).slice(0, 80)}; counts before ${before}, after ${after}${ids}`,
          });
        }
        if (after !== undefined) before = after;
      }
      const writers = g.filter((d) => mayWrite(d.c));
      if (writers.length > 0 && this.stack.alive(lane)) {
        let left = await this.leftovers(lane, true);
        // Another lane's upload in flight leaves a temp file for a moment (gateway inputs reach
        // the same services): only a file still there a second later is a leftover.
        if (left.length > 0) {
          await sleep(1000);
          const still = new Set(await this.leftovers(lane, true));
          left = left.filter((f) => still.has(f));
        }
        const recent = Date.now() - (this.lastCrash.get(lane) ?? 0) < 5000;
        const crashed = recent ? ` (${lane} crashed a moment ago: this may be the crash's doing)` : '';
        if (left.length > 0)
          culprit(writers)!.problems.push({
            cause: 'leftover files',
            detail: left.join('\n') + ids + crashed,
          });
      }
      for (const d of g) for (const p of d.problems) this.flag(d.c, p, d.t0, d.t1, servicesOf(d.c));
    };
    const drain = async () => {
      await Promise.all(parked);
      await settle();
    };

    for (const [i, c] of cases.entries()) {
      if (this.aborted) break;
      if (await this.ensureUp(lane)) {
        await drain();
        before = await this.counts(lane);
      }
      if (c.to !== lane) await this.ensureUp(c.to);
      if (c.prepare) {
        await drain();
        await c.prepare();
        before = await this.counts(lane);
      }
      const run = this.runOne(lane, c).then((d) => {
        group.push(d);
      });
      if (!(await finishesWithin(run, PARK_AFTER_MS))) {
        parked.add(run);
        void run.finally(() => parked.delete(run));
        if (parked.size >= MAX_PARKED) await Promise.race(parked);
      }
      if (parked.size === 0) await settle();
      if ((i + 1) % HEALTH_EVERY === 0) await this.health(lane, c);
    }
    await drain();
    const last = cases[cases.length - 1];
    if (last && !this.aborted) await this.health(lane, last);
    this.print(
      `… lane ${lane}: ${cases.length} inputs done after ${Math.round((Date.now() - this.started) / 1000)} s`,
    );
  }

  /** Sends one input and judges its answer (and its own check). */
  private async runOne(lane: ServiceName, c: Case): Promise<Done> {
    const sent: Sent = { c, started: Date.now() };
    for (const s of new Set<ServiceName>([lane, c.to])) {
      const list = this.recent.get(s) ?? [];
      list.push(sent);
      if (list.length > 64) list.shift();
      this.recent.set(s, list);
    }
    const t0 = sent.started;
    const result = await send(this.stack.get(c.to).port, c.request);
    const t1 = Date.now();
    sent.done = t1;
    this.inputs++;
    this.results.set(c.id, result);
    const problems = judge(c, result);
    if (c.verify) {
      const broken = await c.verify();
      if (broken) problems.push({ cause: 'state changed', detail: broken });
    }
    return { c, result, problems, t0, t1 };
  }

  /** /health of the lane's service within 10 s; a service that does not answer is started again. */
  private async health(lane: ServiceName, last: Case): Promise<void> {
    const p = this.stack.get(lane);
    const r = await send(p.port, { method: 'GET', target: '/health', headers: [] });
    if (r.kind === 'answer' && r.status === 200) return;
    if (!this.stack.alive(lane)) {
      await this.ensureUp(lane);
      return;
    }
    this.flag(
      last,
      { cause: `${lane} /health did not answer`, detail: describeResult(r) },
      Date.now(),
      Date.now(),
      [],
    );
    await this.stack.restart(lane);
    this.seenExits.set(lane, this.stack.get(lane).exits.length);
  }

  /** Findings of the whole run (escaped files, layout). */
  flagRun(where: string, cause: string, detail: string, cls = 'invariant', request?: RawRequest): void {
    this.wrong.push({ where, cls, cause, detail, logs: [], request });
  }
}
