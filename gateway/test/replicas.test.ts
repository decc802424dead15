/**
 * Two gateways on one PostgreSQL key database and one Redis (issue 18, "gateway"): a key revoked
 * on one is refused by the other within 1 s, also after the other's LISTEN connection was cut;
 * the rate limit is one budget across both, and a Redis outage loosens it to one per replica
 * instead of lifting it or hanging requests.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { listen, openDatabase, parseDbUrl } from '@qlab/kit';
import { closedPort, mqttTestUrl, pgSchemaUrl, pgTestUrl, redisTestUrl, waitFor } from '@qlab/testkit';
import pg from 'pg';
import WebSocket from 'ws';
import { KEY_STORE_TIMEOUT_MS, keyMigrations } from '../src/keys';
import { type RunningGateway, startGateway } from './helpers';

const pgUrl = pgTestUrl('gateway replicas');
const redisUrl = redisTestUrl('gateway replicas');
const mqttUrl = mqttTestUrl('gateway replicas');
const ADMIN = 'admin-key-0123456789abcdef';

/** A stand-in for every service: answers 200 with the path. */
async function echoService() {
  return listen(
    (req: IncomingMessage, res: ServerResponse) => {
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify({ path: req.url }));
    },
    { port: 0, graceMs: 0 },
  );
}

(pgUrl ? describe : describe.skip)('two gateway replicas on one PostgreSQL', () => {
  let a: RunningGateway;
  let b: RunningGateway;
  let schemaUrl: string;
  let schema: string;
  let service: Awaited<ReturnType<typeof echoService>>;
  let admin: pg.Client;

  beforeAll(async () => {
    ({ url: schemaUrl, schema } = pgSchemaUrl(pgUrl!));
    // Migrated once, as the first replica to start does; the second finds it done.
    const knex = await openDatabase({ target: parseDbUrl(schemaUrl), migrations: keyMigrations });
    await knex.destroy();
    service = await echoService();
    const services = { 'calibration-store': { url: service.url } };
    a = await startGateway({
      keys: [[ADMIN, ['read', 'write', 'admin']]],
      dbUrl: schemaUrl,
      services,
      mqttUrl,
    });
    b = await startGateway({
      keys: [[ADMIN, ['read', 'write', 'admin']]],
      dbUrl: schemaUrl,
      services,
      mqttUrl,
    });
    admin = new pg.Client({ connectionString: pgUrl });
    await admin.connect();
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await admin?.query(`drop schema if exists "${schema}" cascade`);
    await admin?.end();
    await service?.close();
  });

  const call = (gw: RunningGateway, key: string, path = '/api/store/calibrations/list') =>
    fetch(`${gw.url}${path}`, { headers: { 'X-API-Key': key } });

  async function newKey(): Promise<{ key: string; id: string }> {
    const res = await fetch(`${a.url}/api/keys`, {
      method: 'POST',
      headers: { 'X-API-Key': ADMIN, 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: 'replica test', scopes: ['read'] }),
    });
    expect(res.status).toBe(201);
    return (await res.json()) as { key: string; id: string };
  }

  /** Revokes on A; resolves with how long B kept accepting the key (B had it cached). */
  async function revokeOnAMeasureOnB(key: string, id: string): Promise<number> {
    expect((await call(b, key)).status).toBe(200);
    expect((await call(b, key)).status).toBe(200);
    const revoked = await fetch(`${a.url}/api/keys/${id}`, {
      method: 'DELETE',
      headers: { 'X-API-Key': ADMIN },
    });
    expect(revoked.status).toBe(200);
    const t0 = Date.now();
    for (;;) {
      const status = (await call(b, key)).status;
      if (status === 401) return Date.now() - t0;
      expect(status).toBe(200);
      if (Date.now() - t0 > 5000) throw new Error('B still accepts the revoked key after 5 s');
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  it('refuses on one replica, within 1 s, a key revoked on the other', async () => {
    const { key, id } = await newKey();
    const took = await revokeOnAMeasureOnB(key, id);
    console.log(`revocation on A refused on B after ${took} ms`);
    expect(took).toBeLessThan(1000);
  });

  (mqttUrl ? it : it.skip)(
    'closes, within 1 s, the WebSockets a key revoked on another replica holds open',
    async () => {
      const { key, id } = await newKey();
      const opened = async (gw: RunningGateway) => {
        const ws = new WebSocket(`${gw.url.replace('http', 'ws')}/api/events?topic=qlab/%23`, {
          headers: { 'X-API-Key': key },
        });
        const closed = new Promise<number>((r) => ws.once('close', () => r(Date.now())));
        await new Promise<void>((resolve, reject) => {
          ws.once('message', () => resolve());
          ws.once('error', reject);
        });
        // In an object: an async function returning a promise would wait for it.
        return { closed };
      };
      const onB = (await opened(b)).closed;
      const onA = (await opened(a)).closed;
      const t0 = Date.now();
      const revoked = await fetch(`${a.url}/api/keys/${id}`, {
        method: 'DELETE',
        headers: { 'X-API-Key': ADMIN },
      });
      expect(revoked.status).toBe(200);
      const [closedB, closedA] = await Promise.all([onB, onA]);
      console.log(
        `revoked on A: its WebSockets closed on A after ${closedA - t0} ms, on B after ${closedB - t0} ms`,
      );
      expect(closedB - t0).toBeLessThan(1000);
      expect(closedA - t0).toBeLessThan(1000);
      const again = new WebSocket(`${b.url.replace('http', 'ws')}/api/events`, {
        headers: { 'X-API-Key': key },
      });
      const status = await new Promise<number>((r) =>
        again.once('unexpected-response', (_q, res) => r(res.statusCode!)),
      );
      expect(status).toBe(401);
    },
  );

  it('still refuses within 1 s when the other replica lost its LISTEN connection', async () => {
    const { key, id } = await newKey();
    expect((await call(b, key)).status).toBe(200);
    // Every replica's listener is cut; they reconnect, and meanwhile must not trust their caches.
    const killed = await admin.query(
      `select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'qlab-gateway-revocations'`,
    );
    expect(killed.rowCount).toBeGreaterThanOrEqual(2);
    const took = await revokeOnAMeasureOnB(key, id);
    expect(took).toBeLessThan(1000);
  });
});

(pgUrl ? describe : describe.skip)('a key database that stops answering', () => {
  it('is a 503 in seconds, not a request held for ever, and passes when it answers again', async () => {
    const { url, schema } = pgSchemaUrl(pgUrl!);
    const gw = await startGateway({ keys: [[ADMIN, ['read', 'write', 'admin']]], dbUrl: url });
    const locker = new pg.Client({ connectionString: pgUrl! });
    await locker.connect();
    try {
      // Another session holds the keys table: every key lookup waits, as on a stalled database.
      await locker.query('begin');
      await locker.query(`lock table "${schema}".api_keys in access exclusive mode`);
      const t0 = Date.now();
      const res = await fetch(`${gw.url}/api/keys/me`, { headers: { 'X-API-Key': ADMIN } });
      const took = Date.now() - t0;
      expect(res.status).toBe(503);
      expect(res.headers.get('content-type')).toBe('application/problem+json; charset=utf-8');
      expect(took).toBeLessThan(KEY_STORE_TIMEOUT_MS + 3000);
      await locker.query('rollback');
      expect((await fetch(`${gw.url}/api/keys/me`, { headers: { 'X-API-Key': ADMIN } })).status).toBe(200);
    } finally {
      await locker.end();
      await gw.close();
    }
  }, 30_000);
});

(pgUrl && redisUrl ? describe : describe.skip)('a rate limit shared through Redis', () => {
  let service: Awaited<ReturnType<typeof echoService>>;
  const started: RunningGateway[] = [];
  const schemas: string[] = [];
  beforeAll(async () => {
    service = await echoService();
  });
  afterAll(async () => {
    for (const g of started) await g.close();
    await service?.close();
    const admin = new pg.Client({ connectionString: pgUrl });
    await admin.connect();
    for (const schema of schemas) await admin.query(`drop schema if exists "${schema}" cascade`);
    await admin.end();
  });

  /** Two gateways on one key database (so one key has one id) and the given Redis. */
  async function pair(redis: string | undefined, key: string) {
    const services = { 'calibration-store': { url: service.url } };
    const { url: dbUrl, schema } = pgSchemaUrl(pgUrl!);
    schemas.push(schema);
    const knex = await openDatabase({ target: parseDbUrl(dbUrl), migrations: keyMigrations });
    await knex.destroy();
    const one = {
      dbUrl,
      keys: [[key, ['read']]] as [string, ('read' | 'write' | 'admin')[]][],
      rateLimit: 10,
      redisUrl: redis,
      services,
    };
    const x = await startGateway(one);
    const y = await startGateway(one);
    started.push(x, y);
    return [x, y];
  }
  const statuses = async (gws: RunningGateway[], key: string, n: number) => {
    const out: number[] = [];
    for (let i = 0; i < n; i++)
      out.push(
        (await fetch(`${gws[i % 2]!.url}/api/store/health`, { headers: { 'X-API-Key': key } })).status,
      );
    return out;
  };

  it('gives two replicas one budget per key and minute', async () => {
    // A key of its own: its counter starts at zero whatever ran before.
    const key = `shared-${Date.now()}-${Math.random().toString(36).slice(2)}`;
    const gws = await pair(redisUrl, key);
    // The window is the clock minute: start well inside one.
    await waitFor(() => new Date().getSeconds() < 55, 10_000, 200);
    const got = await statuses(gws, key, 14);
    expect(got).toEqual([...Array(10).fill(200), 429, 429, 429, 429]);
  });

  it('counts per replica, without hanging, while Redis cannot be reached', async () => {
    const key = `offline-${Date.now()}`;
    const gws = await pair(`redis://127.0.0.1:${await closedPort()}`, key);
    const t0 = Date.now();
    const got = await statuses(gws, key, 24);
    expect(Date.now() - t0).toBeLessThan(10_000);
    // Ten per replica in this minute: each of the two refuses its last two.
    expect(got.filter((s) => s === 200).length).toBeGreaterThanOrEqual(20);
    expect(got.filter((s) => s === 429).length).toBeLessThanOrEqual(4);
  });
});
