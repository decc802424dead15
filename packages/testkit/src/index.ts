import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** A fresh temporary directory; remove it with the returned cleanup. */
export function tempDir(prefix = 'qlab-test-'): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

const announced = new Set<string>();
function announceSkip(what: string, variable: string): void {
  if (announced.has(what)) return;
  announced.add(what);
  process.stdout.write(`[skip] ${what}: ${variable} is not set\n`);
}

/** The PostgreSQL URL for tests, or undefined (and a printed reason) when QLAB_TEST_PG_URL is unset. */
export function pgTestUrl(suite: string): string | undefined {
  const url = process.env.QLAB_TEST_PG_URL;
  if (!url) announceSkip(`PostgreSQL suite "${suite}"`, 'QLAB_TEST_PG_URL');
  return url || undefined;
}

/** The Redis URL for tests, or undefined (and a printed reason) when QLAB_TEST_REDIS_URL is unset. */
export function redisTestUrl(suite: string): string | undefined {
  const url = process.env.QLAB_TEST_REDIS_URL;
  if (!url) announceSkip(`Redis suite "${suite}"`, 'QLAB_TEST_REDIS_URL');
  return url || undefined;
}

/** The Mosquitto URL for tests, or undefined (and a printed reason) when QLAB_TEST_MQTT_URL is unset. */
export function mqttTestUrl(suite: string): string | undefined {
  const url = process.env.QLAB_TEST_MQTT_URL;
  if (!url) announceSkip(`Mosquitto suite "${suite}"`, 'QLAB_TEST_MQTT_URL');
  return url || undefined;
}

/** A PostgreSQL URL that puts one test file in its own schema (dropped by the returned cleanup). */
export function pgSchemaUrl(baseUrl: string): { url: string; schema: string } {
  const schema = `t_${randomBytes(6).toString('hex')}`;
  const u = new URL(baseUrl);
  u.searchParams.set('schema', schema);
  return { url: u.toString(), schema };
}

/** Resolves when `check` returns true, polling every `everyMs`; rejects after `timeoutMs`. */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 5000,
  everyMs = 20,
): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > until) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
export { startTcpProxy } from './tcp-proxy';

/** A port nothing listens on: bind one, then let it go. */
export async function closedPort(): Promise<number> {
  const { createServer } = await import('node:net');
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}
export { type BenchFigures, recordBench } from './bench-results';
export { buildPackage, fromSource, killGroup, spawnService } from './processes';
