import path from 'node:path';
import { type Listening, listen, openDatabase, parseDbUrl, silentLogger } from '@qlab/kit';
import { closedPort, tempDir } from '@qlab/testkit';
import { compose } from '../src/compose';
import { type Scope, UPSTREAMS, type Upstream, type UpstreamId } from '../src/config';
import { KEY_STORE_TIMEOUT_MS, type KeyStore, keyMigrations } from '../src/keys';

export interface GatewayTestOptions {
  /** Keys to create, with their scopes. */
  keys: [string, Scope[]][];
  /** Services that are up; every other one points at a closed port. */
  services?: Partial<Record<UpstreamId, { url: string; token?: string }>>;
  /** Upstreams turned off (seed 003's --config `enabled: false`). */
  disabled?: UpstreamId[];
  rateLimit?: number;
  mqttUrl?: string;
  proxyTimeoutMs?: number;
  aggregateTimeoutMs?: number;
  /** A console build to serve at `/`. */
  consoleDir?: string;
  /** A key database shared with other gateways (replicas); default: a SQLite file of its own. */
  dbUrl?: string;
  /** Shared rate-limit counters. */
  redisUrl?: string;
}

export interface RunningGateway {
  url: string;
  server: Listening;
  keys: KeyStore;
  close(): Promise<void>;
}

/** A gateway on port 0 with its own key database, in front of the given services. */
export async function startGateway(o: GatewayTestOptions): Promise<RunningGateway> {
  const tmp = tempDir('qlab-gateway-');
  const knex = await openDatabase({
    target: parseDbUrl(o.dbUrl ?? path.join(tmp.dir, 'keys.db')),
    migrations: keyMigrations,
    pgTimeoutMs: KEY_STORE_TIMEOUT_MS,
  });
  const down = `http://127.0.0.1:${await closedPort()}`;
  const upstreams: Upstream[] = UPSTREAMS.map((u) => ({
    id: u.id,
    url: down,
    ...o.services?.[u.id],
    ...(o.disabled?.includes(u.id) ? { disabled: true } : {}),
  }));
  const gw = compose(
    {
      upstreams,
      rateLimit: o.rateLimit ?? 0,
      proxyTimeoutMs: o.proxyTimeoutMs ?? 5000,
      aggregateTimeoutMs: o.aggregateTimeoutMs ?? 1000,
      mqttUrl: o.mqttUrl,
      consoleDir: o.consoleDir,
      redisUrl: o.redisUrl,
    },
    { knex, logger: silentLogger() },
  );
  const { keys } = gw;
  await gw.ready();
  for (const [key, scopes] of o.keys) await keys.ensure(key, scopes, `test ${scopes.join('+')}`);
  const server = await listen(gw.handle, { port: 0, graceMs: 0 });
  gw.attach(server.server);
  return {
    url: server.url,
    server,
    keys,
    async close() {
      await server.close();
      await gw.close();
      await knex.destroy();
      tmp.cleanup();
    },
  };
}
