#!/usr/bin/env node
/**
 * `pnpm bench:report`: every target of issue 19 with its last three recorded runs (from
 * bench-results/*.json, written by `pnpm bench`), and whether the median of those (the worst, for
 * targets marked `agg: 'max'`) meets it.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TARGETS } from './bench-targets.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dir = path.join(root, 'bench-results');
const runsById = new Map();
for (const f of existsSync(dir) ? readdirSync(dir).filter((n) => n.endsWith('.json')) : []) {
  const { runs = [] } = JSON.parse(readFileSync(path.join(dir, f), 'utf8'));
  for (const run of runs)
    for (const [id, value] of Object.entries(run.figures ?? {})) {
      if (!runsById.has(id)) runsById.set(id, []);
      runsById.get(id).push(value);
    }
}
// Of an even count, the middle value that is worse for the target (upper for `<`, lower for `>=`).
const median = (xs, upper) =>
  [...xs].sort((a, b) => a - b)[upper ? Math.ceil((xs.length - 1) / 2) : Math.floor((xs.length - 1) / 2)];
const fmt = (v) => (v === undefined ? '—' : Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(2));
const rows = TARGETS.map((t) => {
  const last = (runsById.get(t.id) ?? []).slice(-3);
  // The worst of the runs where a target says so (memory: every service's transfers count).
  const m =
    last.length === 0 ? undefined : t.agg === 'max' ? Math.max(...last) : median(last, t.goal === '<');
  const met = m === undefined ? 'not run' : (t.goal === '>=' ? m >= t.value : m < t.value) ? 'met' : 'missed';
  return [t.work, t.peer, `${t.goal} ${t.value} ${t.unit}`, last.map(fmt).join(' / ') || '—', met];
});
const head = ['work', 'peer in the same run', 'target', 'last runs', ''];
const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
const line = (r) => r.map((c, i) => String(c).padEnd(widths[i])).join(' | ');
console.log(line(head));
console.log(widths.map((w) => '-'.repeat(w)).join('-|-'));
for (const r of rows) console.log(line(r));
const counts = {};
for (const r of rows) counts[r[4]] = (counts[r[4]] ?? 0) + 1;
console.log(
  `\n${Object.entries(counts)
    .map(([k, v]) => `${v} ${k}`)
    .join(', ')} (of ${rows.length} targets)`,
);
