// `pnpm test` runs every package's suites in one jest run with one summary.
const fs = require('node:fs');
const path = require('node:path');

const roots = ['gateway', 'infra/stack'];
for (const group of ['packages', 'services']) {
  for (const name of fs.existsSync(group) ? fs.readdirSync(group) : []) roots.push(`${group}/${name}`);
}

module.exports = {
  projects: roots
    .filter((dir) => fs.existsSync(path.join(__dirname, dir, 'jest.config.cjs')))
    .map((dir) => `<rootDir>/${dir}`),
  // Suites are mostly waiting on sockets and disks, so two workers fit a 2-core machine.
  maxWorkers: 2,
  // testTimeout is a global option: the projects' own value does not apply in a multi-project run.
  testTimeout: 30_000,
  reporters: ['default', '<rootDir>/scripts/jest-summary-reporter.cjs'],
};
