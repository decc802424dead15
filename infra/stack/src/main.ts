import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { privateDir } from '@qlab/kit';
import { STACK_SERVICES } from './services';
import { startStack } from './stack';

/**
 * `pnpm start`: the whole local stack on embedded defaults (SQLite, DuckDB files, the embedded
 * MQTT broker), data under ./data, stopped cleanly by Ctrl-C.
 */
async function main() {
  const root = path.resolve(__dirname, '../../..');
  const dataDir = path.resolve(process.env.DATA_DIR ?? path.join(root, 'data'));
  privateDir(dataDir);
  const print = (line: string) => process.stdout.write(`${line}\n`);
  const fromSource = process.env.QLAB_STACK_FROM_SOURCE === '1';
  print(`qlab: starting ${STACK_SERVICES.length} service(s), data in ${dataDir}`);
  const stack = await startStack({
    root,
    dataDir,
    services: STACK_SERVICES,
    env: process.env,
    fromSource,
    print,
  });

  print('');
  print('qlab is up:');
  print(`  ${'MQTT broker'.padEnd(20)} ${stack.mqttUrl}${process.env.MQTT_URL ? '' : ' (embedded)'}`);
  for (const s of stack.services) print(`  ${s.service.name.padEnd(20)} ${s.url}  (docs: ${s.url}/docs)`);
  const gateway = stack.services.find((s) => s.service.name === 'gateway');
  if (gateway) {
    const keyFile = path.join(dataDir, 'gateway', 'bootstrap-api-key');
    const key = existsSync(keyFile) ? readFileSync(keyFile, 'utf8').trim() : undefined;
    print('');
    print(`Everything is behind the gateway at ${gateway.url} (one API: ${gateway.url}/docs).`);
    // Keys stay in their files: terminal output ends up in scrollback, logs and screenshots.
    print(
      key
        ? `API key (admin): ${key.slice(0, 9)}… in ${keyFile}`
        : 'API key: the one you set in GATEWAY_API_KEYS',
    );
    print(`Each service's own token (for its direct port): ${path.join(dataDir, 'tokens')}/<service>`);
    print(`Try: curl -H "X-API-Key: $(cat ${keyFile})" ${gateway.url}/api/db/overview   ·   pnpm demo`);
  }
  print('Press Ctrl-C to stop.');
  print('qlab: ready');

  let stopping = false;
  const shutdown = async (code: number) => {
    if (stopping) return;
    stopping = true;
    print('qlab: stopping…');
    await stack.stop();
    print('qlab: stopped');
    process.exit(code);
  };
  process.on('SIGINT', () => void shutdown(0));
  process.on('SIGTERM', () => void shutdown(0));
  stack.crashed.then((why) => {
    print(`qlab: ${why}; stopping the stack`);
    void shutdown(1);
  });
}

main().catch((err) => {
  process.stderr.write(
    `qlab: could not start the stack: ${err instanceof Error ? err.message : String(err)}\n`,
  );
  process.exit(1);
});
