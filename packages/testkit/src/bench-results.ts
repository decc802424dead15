import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** One run's figures, by target id (scripts/bench-targets.mjs lists the targets). */
export type BenchFigures = Record<string, number>;

/** How many runs of a service each results file keeps (the report shows the last three). */
const KEEP_RUNS = 10;

/**
 * Adds one run's figures to `bench-results/<service>.json` at the repository's root (git-ignored),
 * for `pnpm bench:report`. Returns the file written.
 */
export function recordBench(service: string, figures: BenchFigures, root = repoRoot()): string {
  const dir = path.join(root, 'bench-results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${service}.json`);
  let runs: { at: string; figures: BenchFigures }[] = [];
  try {
    runs = (JSON.parse(readFileSync(file, 'utf8')) as { runs: typeof runs }).runs ?? [];
  } catch {
    // first run, or a file from elsewhere: started anew
  }
  runs.push({ at: new Date().toISOString(), figures });
  writeFileSync(file, `${JSON.stringify({ service, runs: runs.slice(-KEEP_RUNS) }, null, 2)}\n`);
  return file;
}

/** The monorepo's root: the nearest folder up from here with pnpm-workspace.yaml. */
function repoRoot(): string {
  let dir = __dirname;
  for (;;) {
    try {
      readFileSync(path.join(dir, 'pnpm-workspace.yaml'));
      return dir;
    } catch {
      const up = path.dirname(dir);
      if (up === dir) return process.cwd();
      dir = up;
    }
  }
}
