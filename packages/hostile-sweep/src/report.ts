import { describeRequest, type RawRequest, requestHead } from './raw-http';
import type { WrongAnswer } from './runner';
import type { HostileStack } from './stack';

/** Wrong answers with the same route, input class and cause are one finding. */
export function groupKey(w: WrongAnswer): string {
  return `${w.where} | ${w.cls} | ${w.cause}`;
}

export function groups(wrong: WrongAnswer[]): { key: string; first: WrongAnswer; count: number }[] {
  const map = new Map<string, { key: string; first: WrongAnswer; count: number }>();
  for (const w of wrong) {
    const k = groupKey(w);
    const g = map.get(k);
    if (g) g.count++;
    else map.set(k, { key: k, first: w, count: 1 });
  }
  return [...map.values()];
}

/** Worst first: a dead service, then 5xx and hangs, damage, wrong acceptance, auth, then form. */
const SEVERITY: [RegExp, number][] = [
  [/exited|did not answer/, 0],
  [/^5\d\d$|no answer|closed without|cut off/, 1],
  [/counts changed|state changed|leftover|escaped|outside/, 2],
  [/for an invalid input|upgrade accepted|left a socket|valid upgrade/, 3],
  [/instead of|although the key/, 4],
];
const severity = (w: WrongAnswer) => SEVERITY.find(([r]) => r.test(w.cause))?.[1] ?? 5;

/** The first wrong answers to print: one of each finding first (worst first), then the rest. */
export function firstToShow(wrong: WrongAnswer[], limit = 50): WrongAnswer[] {
  const firsts = groups(wrong)
    .map((g) => g.first)
    .sort((a, b) => severity(a) - severity(b));
  const rest = wrong.filter((w) => !firsts.includes(w));
  return [...firsts, ...rest].slice(0, limit);
}

/** A node one-liner that sends the request's exact bytes (when they are few enough to print). */
function nodeSnippet(req: RawRequest, port: number): string | undefined {
  const head = requestHead(req, `127.0.0.1:${port}`);
  const body =
    req.body === undefined
      ? Buffer.alloc(0)
      : req.truncateAt !== undefined
        ? req.body.subarray(0, req.truncateAt)
        : req.body;
  if (req.chunked || head.length + body.length > 3000) return undefined;
  const b64 = Buffer.concat([head, body]).toString('base64');
  const end = req.truncateAt !== undefined ? 's.end();' : '';
  return `node -e 's=require("net").connect(${port},"127.0.0.1",()=>{s.write(Buffer.from("${b64}","base64"));${end}});s.pipe(process.stdout)'`;
}

export function describeWrong(w: WrongAnswer, stack: HostileStack, seed: number, scale: number): string {
  const lines: string[] = [];
  const id = w.c ? `#${w.c.id} ` : '';
  lines.push(`${id}${w.where} [${w.cls}${w.c ? `: ${w.c.label}` : ''}] — ${w.cause}`);
  lines.push(`  ${w.detail.split('\n').join('\n  ')}`);
  const req = w.c?.request ?? w.request;
  if (req) {
    const to = w.c ? stack.get(w.c.to) : undefined;
    lines.push(`  request${to ? ` to ${to.name} (127.0.0.1:${to.port})` : ''}:`);
    lines.push(`    ${describeRequest(req).split('\n').join('\n    ')}`);
    const snippet = to ? nodeSnippet(req, to.port) : undefined;
    if (snippet) lines.push(`  send it again: ${snippet}`);
  }
  if (w.c)
    lines.push(
      `  rerun just this input: HOSTILE_SEED=${seed} HOSTILE_RUNS=${scale}x HOSTILE_ONLY=${w.c.id} pnpm test:hostile`,
    );
  for (const l of w.logs) lines.push(`  log ${l}`);
  return lines.join('\n');
}

/** The findings as a table: how many inputs each, route, class, cause, first input. */
export function renderGroups(wrong: WrongAnswer[]): string {
  const gs = groups(wrong).sort((a, b) => a.key.localeCompare(b.key));
  return gs
    .map(
      (g) =>
        `${String(g.count).padStart(5)}  ${g.first.where} | ${g.first.cls} | ${g.first.cause}${g.first.c ? `  (first: #${g.first.c.id})` : ''}`,
    )
    .join('\n');
}

export function summaryLine(inputs: number, wrong: number): string {
  return `hostile sweep: ${inputs} inputs, ${wrong} wrong answers`;
}
