#!/usr/bin/env node
// `pnpm start`: install/build when needed, then run the local stack in this same process,
// so Ctrl-C reaches one process and the shell has nothing to report.
await import('./ensure-ready.mjs');
await import('../infra/stack/dist/main.js');
