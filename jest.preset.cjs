// Shared jest settings: every package's jest.config.cjs is one line calling this.
// Workspace packages resolve to their TypeScript sources through the
// "@qlab/source" export condition, so tests never need a build first.
const path = require('node:path');

// Two sets. Fast (`pnpm test:fast`, under 30 s): in-process, no spawned processes, no broker
// or database taken down, a couple of seconds a file at most. Slow (`pnpm test:slow`), the
// files named *.slow.test.ts: processes, outages, big data, real clients end to end.
// `pnpm test` runs both.
const SET = process.env.QLAB_TESTS ?? 'all';
if (!['all', 'fast', 'slow'].includes(SET)) throw new Error(`QLAB_TESTS must be fast or slow, not ${SET}`);

module.exports = function preset(dir, overrides = {}) {
  const pkg = require(path.join(dir, 'package.json'));
  return {
    displayName: pkg.name,
    rootDir: dir,
    testEnvironment: 'node',
    testEnvironmentOptions: { customExportConditions: ['@qlab/source', 'node', 'node-addons'] },
    transform: {
      '^.+\\.ts$': [
        '@swc/jest',
        { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'commonjs' } },
      ],
    },
    testMatch: [SET === 'slow' ? '<rootDir>/test/**/*.slow.test.ts' : '<rootDir>/test/**/*.test.ts'],
    testPathIgnorePatterns: ['/node_modules/', ...(SET === 'fast' ? ['\\.slow\\.test\\.ts$'] : [])],
    moduleFileExtensions: ['ts', 'js', 'cjs', 'json'],
    testTimeout: 30000,
    ...overrides,
  };
};
