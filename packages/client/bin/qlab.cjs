#!/usr/bin/env node
// The `qlab` command: a committed shim, so the bin link exists before the first build.
try {
  require.resolve('../dist/cli.js');
} catch {
  process.stderr.write('qlab: the client is not built yet; run `pnpm build` at the repo root first\n');
  process.exit(1);
}
require('../dist/cli.js');
