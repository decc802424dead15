import path from 'node:path';
import { DEFAULT_SEED, runSweep } from '../src/sweep';

const root = path.resolve(__dirname, '../../..');
const seed = process.env.HOSTILE_SEED ? Number(process.env.HOSTILE_SEED) : DEFAULT_SEED;
const only = process.env.HOSTILE_ONLY
  ? new Set(process.env.HOSTILE_ONLY.split(',').map((s) => Number(s.trim())))
  : undefined;
// Four minutes is the budget of a default run on a 2-core machine; bigger runs get more.
const scale = /^(\d+)x$/i.exec(process.env.HOSTILE_RUNS ?? '')?.[1];
const timeoutMs =
  240_000 * Math.max(1, Number(scale ?? 1), Math.ceil(Number(process.env.HOSTILE_RUNS) / 6000) || 1);

describe('hostile-input sweep (the whole stack, from source)', () => {
  it(
    'answers every hostile input with a prompt 4xx problem (or a 2xx when it is valid), and nothing breaks',
    async () => {
      // Raw writes: jest's console adds a stack trace to every line.
      const print = (text: string) => process.stdout.write(`${text}\n`);
      const show = process.env.HOSTILE_SHOW ? Number(process.env.HOSTILE_SHOW) : undefined;
      const result = await runSweep(root, { seed, runs: process.env.HOSTILE_RUNS, only, show, print });
      print(`hostile sweep finished in ${result.seconds} s`);
      expect(result.inputs).toBeGreaterThan(0);
      expect(result.wrong.length).toBe(0);
    },
    timeoutMs,
  );
});
