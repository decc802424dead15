/**
 * Two quantum-tracker replicas on one PostgreSQL schema and one MQTT broker (issue 18,
 * "quantum-tracker"): one of them syncs the provider, the other serves reads and WebSockets
 * with what the first records (relayed over MQTT), hands a refresh asked of it to the leader,
 * and takes over when the leader is SIGKILLed.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { Outbox } from '@qlab/events';
import { listen, openDatabase, parseDbUrl, silentLogger } from '@qlab/kit';
import { mqttTestUrl, pgSchemaUrl, pgTestUrl, tempDir, waitFor } from '@qlab/testkit';
import WebSocket from 'ws';
import { compose } from '../src/compose';
import { loadTrackerConfig } from '../src/config';
import { trackerEvents } from '../src/events';
import { migrations } from '../src/storage/migrations';
import { FakeIonq } from './fake-providers';
import { get } from './helpers';

const pgUrl = pgTestUrl('tracker replicas');
const mqttUrl = mqttTestUrl('tracker replicas');

(pgUrl && mqttUrl ? describe : describe.skip)('two tracker replicas', () => {
  const tmp = tempDir('qlab-tracker-replicas-');
  let ionq: FakeIonq;
  let schemaUrl: string;
  let schema: string;
  let child: ChildProcess | undefined;
  let replicaC: ChildProcess | undefined;
  /** The in-process replica: it leads once the first test has killed the other. */
  let b: Awaited<ReturnType<typeof inProcessReplica>>;
  const cleanups: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    ionq = await new FakeIonq().start();
    ionq.backends = [{ backend: 'qpu.forte-1', status: 'available', qubits: 36, average_queue_time: 5 }];
    ({ url: schemaUrl, schema } = pgSchemaUrl(pgUrl!));
    const knex = await openDatabase({ target: parseDbUrl(schemaUrl), migrations });
    cleanups.push(async () => {
      await knex.raw('drop schema if exists ?? cascade', [schema]);
      await knex.destroy();
    });
  });
  afterAll(async () => {
    child?.kill('SIGKILL');
    replicaC?.kill('SIGKILL');
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    await ionq.close();
    tmp.cleanup();
  });

  const env = (): NodeJS.ProcessEnv => ({
    TRACKER_DB_URL: schemaUrl,
    IONQ_API_KEY: ionq.apiKey,
    IONQ_API_URL: ionq.url,
    IONQ_QUEUE_TIME_UNIT_MS: '1',
    TRACKER_SYNC_INTERVAL: '1s',
    MQTT_URL: mqttUrl,
    DATA_DIR: tmp.dir,
  });

  /** A replica as production runs it: its own process, from the build. */
  async function spawnReplica(): Promise<{ url: string; process: ChildProcess }> {
    const p = spawn(process.execPath, [path.join(__dirname, '..', 'dist', 'main.js')], {
      env: { ...process.env, ...env(), HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      p.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /"url":"(http:\/\/[^"]+)"[^\n]*quantum-tracker listening/.exec(out);
        if (m) resolve(m[1]!);
      });
      p.once('exit', (code) => reject(new Error(`replica exited (${code}) before listening:\n${out}`)));
    });
    p.stdout!.resume();
    return { url, process: p };
  }

  /** A replica in this process (its leadership tried every 200 ms). */
  async function inProcessReplica() {
    const knex = await openDatabase({ target: parseDbUrl(schemaUrl), migrations });
    const composed = await compose(loadTrackerConfig(env()), {
      knex,
      outbox: new Outbox(trackerEvents),
      logger: silentLogger(),
      leadership: { campaignMs: 200, heartbeatMs: 100 },
    });
    const server = await listen(composed.handle, { port: 0, graceMs: 0 });
    composed.attach(server.server);
    composed.start();
    cleanups.push(async () => {
      await composed.stop();
      await server.close();
      await knex.destroy();
    });
    return { url: server.url, knex, composed };
  }

  const syncsHere = async (url: string) =>
    (await get(`${url}/health`)).body.providers.map(
      (p: { synced_by_this_replica: boolean }) => p.synced_by_this_replica,
    );

  it('syncs on one replica, serves and relays on both, and hands over when the leader is killed', async () => {
    const a = await spawnReplica();
    child = a.process;
    await waitFor(async () => (await syncsHere(a.url))[0] === true, 10_000, 100);
    b = await inProcessReplica();
    await new Promise((r) => setTimeout(r, 600));
    expect(await syncsHere(b.url)).toEqual([false]);
    expect(b.composed.tracker.leadership.leading()).toEqual([]);

    // B's sockets hear A's syncs, and B's cached answers follow them.
    const ws = new WebSocket(`${b.url.replace('http', 'ws')}/api/v1/ws/dashboard`);
    const heard: string[] = [];
    ws.on('message', (m) => heard.push(String(m)));
    await new Promise((r) => ws.once('open', r));
    await waitFor(() => heard.some((m) => JSON.parse(m).type === 'sync.finished'), 5000);
    const backends = await get(`${b.url}/api/v1/backends`);
    expect(backends.body.total).toBe(1);
    ionq.backends.push({ backend: 'qpu.aria-1', status: 'available', qubits: 25, average_queue_time: 9 });
    await waitFor(async () => (await get(`${b.url}/api/v1/backends`)).body.total === 2, 5000, 100);

    // A refresh asked of B runs on A, the leader, and B answers with A's report.
    const refreshed = await get(`${b.url}/api/v1/dashboard/refresh`, { method: 'POST' });
    expect(refreshed.status).toBe(200);
    expect(refreshed.body.synced).toEqual([expect.objectContaining({ provider: 'ionq', ok: true })]);
    expect(b.composed.tracker.leadership.leading()).toEqual([]);

    // The leader dies without a word: B takes over within a sync interval and syncs.
    const runsBefore = Number((await b.knex('sync_runs').count({ n: '*' }).first())?.n);
    const t0 = Date.now();
    a.process.kill('SIGKILL');
    await waitFor(() => b.composed.tracker.leadership.leading().length === 1, 5000, 20);
    const took = Date.now() - t0;
    console.log(`tracker leader SIGKILLed: the other replica leads after ${took} ms`);
    expect(took).toBeLessThan(1000 + 1000);
    await waitFor(
      async () => Number((await b.knex('sync_runs').count({ n: '*' }).first())?.n) > runsBefore + 1,
      5000,
      100,
    );
    expect(await syncsHere(b.url)).toEqual([true]);
    ws.close();
  }, 60_000);

  it('finishes a refresh whose leader stepped down after accepting it, and records no failure for the cancelled sync', async () => {
    expect(b.composed.tracker.leadership.leading()).toEqual(['ionq']);
    const c = await spawnReplica();
    replicaC = c.process;
    await waitFor(async () => (await syncsHere(c.url))[0] === false, 10_000, 100);
    const failuresBefore = await b.knex('providers').where({ name: 'ionq' }).first();
    // B accepts C's refresh and starts a slow sync; then B steps down mid-sync.
    ionq.delayMs = 1500;
    const refreshing = get(`${c.url}/api/v1/dashboard/refresh`, { method: 'POST' });
    await new Promise((r) => setTimeout(r, 700));
    const t0 = Date.now();
    await b.composed.tracker.leadership.stop();
    const refreshed = await refreshing;
    console.log(`refresh whose leader stepped down answered ${Date.now() - t0} ms later`);
    ionq.delayMs = 0;
    expect(refreshed.status).toBe(200);
    expect(refreshed.body.synced).toEqual([expect.objectContaining({ provider: 'ionq', ok: true })]);
    // C leads once B's lock is gone (under load the answer may come before C's next campaign).
    await waitFor(async () => (await syncsHere(c.url))[0] === true, 5000, 100);
    expect(await syncsHere(c.url)).toEqual([true]);
    const after = await b.knex('providers').where({ name: 'ionq' }).first();
    expect(after.consecutive_failures).toBe(0);
    expect(after.last_error ?? null).toBe(failuresBefore.last_error ?? null);
    const runs = await b.knex('sync_runs').where({ ok: false }).select('error');
    expect(runs.every((r: { error: string }) => r.error.startsWith('cancelled'))).toBe(true);
  }, 60_000);
});
