import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  createLogger,
  Lifecycle,
  listen,
  openDatabase,
  parseDbUrl,
  privateDir,
  runMain,
  stopOnSignals,
} from '@qlab/kit';
import { compose } from './compose';
import { loadGatewayConfig } from './config';
import { KEY_STORE_TIMEOUT_MS, keyMigrations } from './keys';
import { readSeedFlags, USAGE } from './seed-flags';

runMain('gateway', async () => {
  const flags = readSeedFlags(process.argv.slice(2));
  if (flags.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const config = loadGatewayConfig({ ...process.env, ...flags.env }, flags.disabled);
  const logger = createLogger({ service: 'gateway', level: config.logLevel });
  for (const note of flags.notes) logger.warn(note);
  const life = new Lifecycle(logger);
  stopOnSignals(life, logger);
  privateDir(config.dataDir);
  mkdirSync(config.dataDir, { recursive: true });
  const knex = await openDatabase({
    target: parseDbUrl(config.dbUrl),
    migrations: keyMigrations,
    pgTimeoutMs: KEY_STORE_TIMEOUT_MS,
    logger,
  });
  life.add('database', () => knex.destroy());
  const { keys, handle, attach, ready, close } = compose(config, { knex, logger });
  life.add('events, revocations and rate limits', close);
  await ready();
  for (const [i, k] of config.bootstrapKeys.entries())
    await keys.ensure(k.key, k.scopes, `bootstrap ${i + 1} (GATEWAY_API_KEYS)`);
  if ((await keys.count()) === 0) {
    // A first start with no key at all: make one admin key and leave it where the operator looks.
    const file = path.join(config.dataDir, 'bootstrap-api-key');
    const key = existsSync(file)
      ? readFileSync(file, 'utf8').trim()
      : `qlab_${randomBytes(32).toString('base64url')}`;
    await keys.ensure(key, ['read', 'write', 'admin'], 'bootstrap (generated)');
    writeFileSync(file, `${key}\n`, { mode: 0o600 });
    // The key itself stays in the file: logs are copied and shipped further than a 0600 file.
    logger.warn(
      { file, keyPrefix: `${key.slice(0, 9)}…` },
      'no API key configured: generated an admin key (read it from the file)',
    );
  }
  const server = await listen(handle, { port: config.port, host: config.host });
  attach(server.server);
  life.add('http server', () => server.close());
  logger.info(
    { url: server.url, services: Object.fromEntries(config.upstreams.map((u) => [u.id, u.url])) },
    'gateway listening',
  );
});
