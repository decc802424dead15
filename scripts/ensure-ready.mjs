#!/usr/bin/env node
// Run before `pnpm start` and `pnpm test`: installs from the lockfile when node_modules is
// missing or older than pnpm-lock.yaml, then builds (turbo skips what is already built).
// Uses only Node's standard library, because it runs before anything is installed.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const stamp = path.join(root, 'node_modules', '.qlab-lockfile-sha256');
const skipBuild = process.argv.includes('--no-build');

const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 20 || (major === 20 && minor < 19)) {
  console.error(`qlab needs Node 20.19 or newer; this is ${process.version}`);
  process.exit(1);
}

function run(cmd, args) {
  const r = spawnSync(cmd, args, {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, TURBO_TELEMETRY_DISABLED: '1', TURBO_NO_UPDATE_NOTIFIER: '1', DO_NOT_TRACK: '1' },
  });
  if (r.status !== 0) {
    console.error(`qlab: \`${cmd} ${args.join(' ')}\` failed`);
    process.exit(r.status ?? 1);
  }
}

const lockHash = createHash('sha256')
  .update(readFileSync(path.join(root, 'pnpm-lock.yaml')))
  .digest('hex');
const installed = existsSync(stamp) ? readFileSync(stamp, 'utf8').trim() : '';
if (installed !== lockHash) {
  console.log('qlab: installing dependencies from pnpm-lock.yaml…');
  run('pnpm', ['install', '--frozen-lockfile']);
  writeFileSync(stamp, `${lockHash}\n`);
}
if (!skipBuild) run('pnpm', ['exec', 'turbo', 'run', 'build', '--output-logs=errors-only']);
