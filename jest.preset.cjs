// Shared jest settings: every package's jest.config.cjs is one line calling this.
// Workspace packages resolve to their TypeScript sources through the
// "@qlab/source" export condition, so tests never need a build first.
const path = require('node:path');

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
    testMatch: ['<rootDir>/test/**/*.test.ts'],
    moduleFileExtensions: ['ts', 'js', 'cjs', 'json'],
    testTimeout: 30000,
    ...overrides,
  };
};
