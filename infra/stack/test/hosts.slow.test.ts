/**
 * qlab across hosts (issue 18, "Proof across hosts"): network namespaces joined by veth to one
 * bridge stand in for machines. `db` runs PostgreSQL, Mosquitto, Redis and an S3 server; `app1`
 * and `app2` each run a gateway, a calibration-store, a chunked-upload and a quantum-tracker (app1 also the
 * job-worker API); `w1`–`w3` each run a `qlab worker`. From the host (the bridge) the test runs
 * a workload through both gateways and checks what replicas promise: the same archive from
 * either gateway, a revocation refused by the other gateway within 1 s, one rate limit across
 * both, one tracker replica syncing and the other taking over within a sync interval when the
 * leader is SIGKILLed, a worker host cut off mid-job (its job re-run elsewhere after the lease,
 * its late completion refused), a tus upload whose PATCHes alternate between the two hosts'
 * chunked-upload replicas with one of them SIGKILLed mid-PATCH (byte-identical in S3), and
 * every event delivered once.
 *
 * Needs root and `ip netns` (CI runs as root); skipped with the reason printed otherwise.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chownSync, mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { S3BlobStore, s3ClientFromEnv } from '@qlab/blob-store';
import { tempDir, waitFor } from '@qlab/testkit';
import mqtt from 'mqtt';
import { FakeIonq } from 'quantum-tracker/testing';

const root = path.resolve(__dirname, '../../..');
const asRoot = process.getuid?.() === 0;
const netnsWorks = asRoot && process.platform === 'linux' && spawnSync('ip', ['netns', 'list']).status === 0;
if (!netnsWorks) process.stdout.write('[skip] hosts test: needs root and `ip netns` (CI runs as root)\n');

const BRIDGE = 'qlbr0';
const HOSTS = {
  db: '10.77.0.1',
  app1: '10.77.0.2',
  app2: '10.77.0.3',
  w1: '10.77.0.4',
  w2: '10.77.0.5',
  w3: '10.77.0.6',
};
type Host = keyof typeof HOSTS;
const BRIDGE_IP = '10.77.0.254';
const ns = (h: Host) => `qlab-${h}`;
const veth = (h: Host) => `qv-${h}`;

const ADMIN = 'hosts-admin-key-0123456789abcdef';
const TOKENS = {
  store: 'hosts-store-token-0123456789',
  tracker: 'hosts-tracker-token-012345',
  jobs: 'hosts-jobs-token-0123456789',
  uploads: 'hosts-uploads-token-01234567',
};
const RATE_LIMIT = 100;
const LEASE_MS = 3000;
const SYNC_INTERVAL_S = 5;

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
const tryIp = (...args: string[]) => spawnSync('ip', args, { stdio: 'ignore' });

/** Every process in the hosts (runuser's children too), then the hosts and the bridge. */
function teardownNetwork(): void {
  for (const h of Object.keys(HOSTS) as Host[]) {
    const pids = spawnSync('ip', ['netns', 'pids', ns(h)], { encoding: 'utf8' }).stdout ?? '';
    for (const pid of pids.split('\n').filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // gone already
      }
    }
    tryIp('netns', 'del', ns(h));
    // Deleting the host's end deletes the pair, even while a dying process keeps the namespace.
    tryIp('link', 'del', veth(h));
  }
  tryIp('link', 'del', BRIDGE);
}

function buildNetwork(): void {
  teardownNetwork();
  ip('link', 'add', BRIDGE, 'type', 'bridge');
  ip('addr', 'add', `${BRIDGE_IP}/24`, 'dev', BRIDGE);
  ip('link', 'set', BRIDGE, 'up');
  for (const [h, addr] of Object.entries(HOSTS) as [Host, string][]) {
    ip('netns', 'add', ns(h));
    ip('netns', 'exec', ns(h), 'ip', 'link', 'set', 'lo', 'up');
    ip('link', 'add', veth(h), 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns(h));
    ip('link', 'set', veth(h), 'master', BRIDGE, 'up');
    ip('netns', 'exec', ns(h), 'ip', 'addr', 'add', `${addr}/24`, 'dev', 'eth0');
    ip('netns', 'exec', ns(h), 'ip', 'link', 'set', 'eth0', 'up');
  }
}

const procs: { name: string; child: ChildProcess; log: string[] }[] = [];

/** A program on a host; resolves once its output matches `ready` (a log line, a port). */
function onHost(
  host: Host,
  name: string,
  cmd: string[],
  env: NodeJS.ProcessEnv,
  ready: RegExp,
  user?: string,
) {
  const argv = ['netns', 'exec', ns(host), ...(user ? ['runuser', '-u', user, '--'] : []), ...cmd];
  const child = spawn('ip', argv, {
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const entry = { name, child, log: [] as string[] };
  procs.push(entry);
  return new Promise<typeof entry>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${name} not ready in 60 s:\n${entry.log.join('').slice(-3000)}`)),
      60_000,
    );
    const seen = (d: Buffer) => {
      entry.log.push(d.toString());
      if (entry.log.length > 400) entry.log.splice(0, 200);
      if (ready.test(entry.log.join(''))) {
        clearTimeout(timer);
        resolve(entry);
      }
    };
    child.stdout!.on('data', seen);
    child.stderr!.on('data', seen);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code}):\n${entry.log.join('').slice(-3000)}`));
    });
  });
}

const node = (file: string) => [process.execPath, '--enable-source-maps', path.join(root, file)];

(netnsWorks ? describe : describe.skip)('qlab on six hosts', () => {
  const tmp = tempDir('qlab-hosts-');
  let ionq: FakeIonq;
  let events: mqtt.MqttClient;
  const seen: { topic: string; id: string; type: string; data: Record<string, unknown> }[] = [];
  const pg = `postgres://postgres@${HOSTS.db}:5432/postgres`;
  const gw = (h: 'app1' | 'app2') => `http://${HOSTS[h]}:8080`;
  const trackers = new Map<Host, ChildProcess>();
  const uploaders = new Map<Host, ReturnType<typeof onHost>>();
  let s3Store: S3BlobStore;

  /** A chunked-upload replica on `h`: sessions in PostgreSQL, bytes in the S3 server on db. */
  let common: NodeJS.ProcessEnv;
  let s3env: NodeJS.ProcessEnv;
  const startUploads = (h: 'app1' | 'app2') =>
    onHost(
      h,
      `chunked-upload@${h}`,
      node('services/chunked-upload/dist/main.js'),
      {
        ...common,
        ...s3env,
        PORT: '3000',
        DATA_DIR: path.join(tmp.dir, h),
        UPLOAD_DB_URL: `${pg}?schema=chunked_upload`,
        UPLOAD_GATEWAY_TOKEN: TOKENS.uploads,
        UPLOAD_PATH_MODE: 'sanitize',
        BLOB_STORE_URL: 's3://qlab/uploads',
      },
      /chunked-upload listening/,
    );

  beforeAll(async () => {
    buildNetwork();
    // --- db: PostgreSQL, Mosquitto, Redis, S3 ---
    const pgDir = path.join(tmp.dir, 'pg');
    mkdirSync(pgDir);
    const pgUid = Number(execFileSync('id', ['-u', 'postgres']).toString());
    const pgGid = Number(execFileSync('id', ['-g', 'postgres']).toString());
    chownSync(tmp.dir, pgUid, pgGid);
    chownSync(pgDir, pgUid, pgGid);
    const pgBin = `/usr/lib/postgresql/${execFileSync('ls', ['/usr/lib/postgresql']).toString().trim().split('\n').pop()}/bin`;
    execFileSync(
      'runuser',
      [
        '-u',
        'postgres',
        '--',
        `${pgBin}/initdb`,
        '-D',
        `${pgDir}/data`,
        '-U',
        'postgres',
        '-A',
        'trust',
        '--no-sync',
      ],
      { stdio: 'ignore' },
    );
    writeFileSync(`${pgDir}/data/pg_hba.conf`, 'local all all trust\nhost all all 10.77.0.0/24 trust\n');
    const starting = [
      onHost(
        'db',
        'postgres',
        [
          `${pgBin}/postgres`,
          '-D',
          `${pgDir}/data`,
          '-c',
          `listen_addresses=${HOSTS.db}`,
          '-c',
          `unix_socket_directories=${pgDir}`,
          '-c',
          'max_connections=300',
          '-c',
          'fsync=off',
        ],
        {},
        /ready to accept connections/,
        'postgres',
      ),
      onHost(
        'db',
        'redis',
        // Protected mode would refuse every other host (no password on a private network).
        ['redis-server', '--bind', HOSTS.db, '--protected-mode', 'no', '--save', '', '--appendonly', 'no'],
        {},
        /Ready to accept connections/,
      ),
      onHost(
        'db',
        's3',
        [
          process.execPath,
          '--openssl-legacy-provider',
          path.join(root, 'packages/blob-store/test/s3rver-main.cjs'),
          path.join(tmp.dir, 's3'),
          'qlab',
        ],
        { S3RVER_ADDRESS: HOSTS.db },
        /port \d+/,
      ),
    ];
    const mqttConf = path.join(tmp.dir, 'mosquitto.conf');
    writeFileSync(mqttConf, `listener 1883 ${HOSTS.db}\nallow_anonymous true\npersistence false\n`);
    starting.push(
      onHost('db', 'mosquitto', ['mosquitto', '-c', mqttConf, '-v'], {}, /mosquitto version .* running/),
    );
    const [, , s3] = await Promise.all(starting);
    const s3Port = /port (\d+)/.exec(s3!.log.join(''))![1];

    ionq = await new FakeIonq().start(BRIDGE_IP);
    ionq.backends = [{ backend: 'qpu.forte-1', status: 'available', qubits: 36, average_queue_time: 5 }];
    events = mqtt.connect(`mqtt://${HOSTS.db}:1883`, { clientId: `hosts-test-${process.pid}` });
    await new Promise((r) => events.once('connect', r));
    events.subscribe('qlab/#', { qos: 1 });
    events.on('message', (topic, payload) => {
      try {
        const e = JSON.parse(payload.toString());
        if (e.id && e.type) seen.push({ topic, id: e.id, type: e.type, data: e.data });
      } catch {
        // not a CloudEvent (the tracker's live relay)
      }
    });

    // --- app1, app2: gateway, calibration-store, tracker; app1 also the job-worker API ---
    common = { MQTT_URL: `mqtt://${HOSTS.db}:1883`, LOG_LEVEL: 'info', HOST: '0.0.0.0' };
    s3env = {
      AWS_ENDPOINT_URL_S3: `http://${HOSTS.db}:${s3Port}`,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'S3RVER',
      AWS_SECRET_ACCESS_KEY: 'S3RVER',
      S3_FORCE_PATH_STYLE: 'true',
    };
    s3Store = new S3BlobStore(s3ClientFromEnv(s3env), 'qlab', 'uploads');
    const apps: Promise<unknown>[] = [];
    // The job-worker API first: it migrates its schema alone.
    await onHost(
      'app1',
      'job-worker',
      node('services/job-worker/dist/main.js'),
      {
        ...common,
        PORT: '8100',
        DATA_DIR: path.join(tmp.dir, 'app1'),
        JOBS_DB_URL: `${pg}?schema=job_worker`,
        JOBS_API_TOKEN: TOKENS.jobs,
        WORKER_CONCURRENCY: '0',
        JOBS_LEASE_MS: String(LEASE_MS),
      },
      /listening/,
    );
    for (const h of ['app1', 'app2'] as const) {
      const dataDir = path.join(tmp.dir, h);
      apps.push(
        onHost(
          h,
          `calibration-store@${h}`,
          node('services/calibration-store/dist/main.js'),
          {
            ...common,
            ...s3env,
            PORT: '5050',
            DATA_DIR: dataDir,
            QIBO_DB_URI: `${pg}?schema=calibration_store`,
            QIBO_API_TOKEN: TOKENS.store,
            QIBO_SERVER_CONFIG: path.join(dataDir, 'qibo.json'),
            BLOB_STORE_URL: 's3://qlab/calibration-store',
          },
          /listening/,
        ),
      );
    }
    await Promise.all(apps.splice(0));
    // chunked-upload: one replica per app host on the shared schema and bucket (app1 migrates first).
    for (const h of ['app1', 'app2'] as const) {
      const p = startUploads(h);
      uploaders.set(h, p);
      await p;
    }
    for (const h of ['app1', 'app2'] as const) {
      const t = onHost(
        h,
        `tracker@${h}`,
        node('services/quantum-tracker/dist/main.js'),
        {
          ...common,
          PORT: '8000',
          DATA_DIR: path.join(tmp.dir, h),
          TRACKER_DB_URL: `${pg}?schema=quantum_tracker`,
          TRACKER_API_TOKEN: TOKENS.tracker,
          IONQ_API_KEY: ionq.apiKey,
          IONQ_API_URL: ionq.url,
          IONQ_QUEUE_TIME_UNIT_MS: '1',
          TRACKER_SYNC_INTERVAL: `${SYNC_INTERVAL_S}s`,
        },
        /quantum-tracker listening/,
      );
      apps.push(t.then((p) => trackers.set(h, p.child)));
      // One at a time: the first migrates the schema, and leads.
      await apps.at(-1);
    }
    for (const h of ['app1', 'app2'] as const) {
      apps.push(
        onHost(
          h,
          `gateway@${h}`,
          node('gateway/dist/main.js'),
          {
            ...common,
            PORT: '8080',
            DATA_DIR: path.join(tmp.dir, h),
            GATEWAY_API_KEYS: `${ADMIN}:read+write+admin`,
            GATEWAY_RATE_LIMIT: String(RATE_LIMIT),
            GATEWAY_DB_URL: `${pg}?schema=gateway`,
            REDIS_URL: `redis://${HOSTS.db}:6379`,
            CALIBRATION_STORE_URL: 'http://127.0.0.1:5050',
            CALIBRATION_STORE_TOKEN: TOKENS.store,
            QUANTUM_TRACKER_URL: 'http://127.0.0.1:8000',
            QUANTUM_TRACKER_TOKEN: TOKENS.tracker,
            JOB_WORKER_URL: `http://${HOSTS.app1}:8100`,
            JOB_WORKER_TOKEN: TOKENS.jobs,
            CHUNKED_UPLOAD_URL: 'http://127.0.0.1:3000',
            CHUNKED_UPLOAD_TOKEN: TOKENS.uploads,
          },
          /gateway listening/,
        ),
      );
      await apps.at(-1);
    }
    // --- w1..w3: a worker each ---
    await Promise.all(
      (['w1', 'w2', 'w3'] as const).map((h) =>
        onHost(
          h,
          `worker@${h}`,
          node('services/job-worker/dist/worker-main.js'),
          {
            JOBS_URL: `http://${HOSTS.app1}:8100`,
            JOBS_API_TOKEN: TOKENS.jobs,
            JOBS_LEASE_MS: String(LEASE_MS),
            WORKER_ID: h,
            WORKER_POLL_INTERVAL_MS: '200ms',
            WORKER_SUPPORTED_TASKS: 'archive.zip,checksum.sha256',
            LOG_LEVEL: 'info',
          },
          /worker running/,
        ),
      ),
    );
  }, 180_000);

  afterAll(async () => {
    events?.end(true);
    teardownNetwork();
    await Promise.all(
      procs.map((p) =>
        p.child.exitCode === null && p.child.signalCode === null
          ? new Promise((r) => {
              p.child.once('exit', r);
              setTimeout(r, 5000);
            })
          : undefined,
      ),
    );
    await ionq?.close();
    tmp.cleanup();
  }, 60_000);

  const call = (url: string, init: RequestInit & { key?: string } = {}) =>
    fetch(url, { ...init, headers: { 'X-API-Key': init.key ?? ADMIN, ...(init.headers ?? {}) } });

  it('serves on one gateway the archive uploaded through the other, each event once', async () => {
    const zip = Buffer.from(
      'UEsDBBQAAAAAAAAAgV2iUvk3EgAAABIAAAALAAAAcXViaXRzLmpzb257InEwIjp7InQxIjozMS41fX1QSwECFAMUAAAAAAAAAIFdolL5NxIAAAASAAAACwAAAAAAAAAAAAAAgAEAAAAAcXViaXRzLmpzb25QSwUGAAAAAAEAAQA5AAAAOwAAAAAA',
      'base64',
    );
    const form = new FormData();
    form.set('hashID', 'hosts');
    form.set('notes', 'across hosts');
    form.set('archive', new Blob([zip]), 'hosts.zip');
    const up = await call(`${gw('app1')}/api/store/calibrations/upload`, { method: 'POST', body: form });
    expect(up.status).toBe(200);
    const { id } = (await up.json()) as { id: number };
    const down = await call(`${gw('app2')}/api/store/calibrations/${id}/archive`);
    expect(down.status).toBe(200);
    expect(Buffer.from(await down.arrayBuffer()).equals(zip)).toBe(true);
    await waitFor(() => seen.some((e) => e.type.endsWith('calibration.uploaded')), 10_000);
    await new Promise((r) => setTimeout(r, 1500));
    const uploaded = seen.filter((e) => e.type.endsWith('calibration.uploaded'));
    expect(uploaded).toHaveLength(1);
  });

  it('refuses on the other gateway within 1 s a key revoked on one', async () => {
    const made = await call(`${gw('app1')}/api/keys`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: 'revoked across hosts', scopes: ['read'] }),
    });
    const { key, id } = (await made.json()) as { key: string; id: string };
    for (let i = 0; i < 2; i++) expect((await call(`${gw('app2')}/api/keys/me`, { key })).status).toBe(200);
    expect((await call(`${gw('app1')}/api/keys/${id}`, { method: 'DELETE' })).status).toBe(200);
    const t0 = Date.now();
    while ((await call(`${gw('app2')}/api/keys/me`, { key })).status !== 401) {
      if (Date.now() - t0 > 5000) throw new Error('still accepted after 5 s');
    }
    const took = Date.now() - t0;
    process.stdout.write(`revocation on app1 refused on app2 after ${took} ms\n`);
    expect(took).toBeLessThan(1000);
  });

  it('gives a key one rate limit across both gateways', async () => {
    await waitFor(() => new Date().getSeconds() < 45, 20_000, 200);
    const made = await call(`${gw('app2')}/api/keys`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: 'rate across hosts', scopes: ['read'] }),
    });
    const { key } = (await made.json()) as { key: string };
    const statuses: number[] = [];
    for (let i = 0; i < RATE_LIMIT + 20; i++)
      statuses.push((await call(`${gw(i % 2 ? 'app2' : 'app1')}/api/keys/me`, { key })).status);
    const redisNotes = procs
      .filter((p) => p.name.startsWith('gateway'))
      .flatMap((p) =>
        p.log
          .join('')
          .split('\n')
          .filter((l) => /redis/i.test(l)),
      );
    expect([statuses.filter((s) => s === 200).length, redisNotes]).toEqual([RATE_LIMIT, []]);
    expect(statuses.filter((s) => s === 429)).toHaveLength(20);
  });

  it('syncs on exactly one tracker replica, and the other takes over within a sync interval of a SIGKILL', async () => {
    const leads = async () =>
      Promise.all(
        (['app1', 'app2'] as const).map(async (h) => {
          const res = await fetch(`http://${HOSTS[h]}:8000/health`).catch(() => undefined);
          if (!res?.ok) return null;
          const body = (await res.json()) as { providers: { synced_by_this_replica: boolean }[] };
          return body.providers[0]?.synced_by_this_replica ?? null;
        }),
      );
    await waitFor(async () => (await leads()).filter((l) => l === true).length === 1, 10_000, 100);
    expect((await leads()).sort()).toEqual([false, true]);
    const leader = (await leads())[0] ? 'app1' : 'app2';
    const other = leader === 'app1' ? 'app2' : 'app1';
    const t0 = Date.now();
    trackers.get(leader)!.kill('SIGKILL');
    await waitFor(async () => (await leads())[other === 'app1' ? 0 : 1] === true, SYNC_INTERVAL_S * 1000, 50);
    const took = Date.now() - t0;
    process.stdout.write(`tracker leader on ${leader} SIGKILLed; ${other} leads after ${took} ms\n`);
    expect(took).toBeLessThan(SYNC_INTERVAL_S * 1000);
    // Reads through the gateway of the dead replica's host are gone with it; the other serves.
    const res = await call(`${gw(other)}/api/v1/backends`);
    expect(res.status).toBe(200);
  });

  it('completes byte-identical a tus upload whose PATCHes alternate between hosts, one replica SIGKILLed mid-PATCH', async () => {
    const MiB = 1024 * 1024;
    const data = randomBytes(24 * MiB);
    const tus = { 'X-API-Key': ADMIN, 'Tus-Resumable': '1.0.0' };
    const created = await fetch(`${gw('app1')}/api/uploads/files`, {
      method: 'POST',
      headers: {
        ...tus,
        'Upload-Length': String(data.length),
        'Upload-Metadata': `filename ${Buffer.from('across-hosts.bin').toString('base64')}`,
      },
    });
    expect(created.status).toBe(201);
    const file = new URL(created.headers.get('location')!, gw('app1')).pathname;
    const head = async (h: 'app1' | 'app2') =>
      Number((await fetch(`${gw(h)}${file}`, { method: 'HEAD', headers: tus })).headers.get('upload-offset'));
    /** A PATCH through host `h`'s gateway; `stallAfter` sends that many bytes of it and waits. */
    const patch = (h: 'app1' | 'app2', offset: number, body: Buffer, stallAfter?: number) =>
      new Promise<number | 'dropped'>((resolve) => {
        const u = new URL(`${gw(h)}${file}`);
        const req = http.request({
          host: u.hostname,
          port: u.port,
          path: u.pathname,
          method: 'PATCH',
          headers: {
            ...tus,
            'Upload-Offset': String(offset),
            'Content-Type': 'application/offset+octet-stream',
            'Content-Length': String(body.length),
          },
        });
        req.on('response', (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', () => resolve('dropped'));
        if (stallAfter === undefined) req.end(body);
        else req.write(body.subarray(0, stallAfter));
      });
    // 8 MiB through app2, the next PATCH through app1 cut 3 MiB in by SIGKILL of app1's replica.
    expect(await patch('app2', 0, data.subarray(0, 8 * MiB))).toBe(204);
    expect(await head('app1')).toBe(8 * MiB);
    const cut = patch('app1', 8 * MiB, data.subarray(8 * MiB, 16 * MiB), 3 * MiB);
    await new Promise((r) => setTimeout(r, 800));
    (await uploaders.get('app1')!).child.kill('SIGKILL');
    // Its gateway answers for it (502) or the connection goes: either way nothing is acknowledged.
    expect([502, 'dropped']).toContain(await cut);
    expect(await head('app2')).toBe(8 * MiB);
    // app1's replica comes back; the rest alternates between the hosts, 4 MiB a PATCH.
    const back = startUploads('app1');
    uploaders.set('app1', back);
    await back;
    let offset = await head('app2');
    for (let turn = 0; offset < data.length; turn++) {
      const h = turn % 2 === 0 ? 'app1' : 'app2';
      const end = Math.min(offset + 4 * MiB, data.length);
      expect(await patch(h, offset, data.subarray(offset, end))).toBe(204);
      offset = end;
    }
    expect(await head('app1')).toBe(data.length);
    const body = await s3Store.get('files/across-hosts.bin');
    const hash = createHash('sha256');
    for await (const piece of body!) hash.update(piece as Buffer);
    expect(hash.digest('hex')).toBe(createHash('sha256').update(data).digest('hex'));
    await waitFor(
      () => seen.some((e) => e.type.endsWith('upload.completed') && e.data?.filename === 'across-hosts.bin'),
      10_000,
      100,
    );
  }, 120_000);

  it('re-runs elsewhere, after its lease, the job of a worker host whose link is cut, and refuses its late completion', async () => {
    const form = new FormData();
    form.set('task_type', 'archive.zip');
    form.set('params', JSON.stringify({ name: 'big.zip' }));
    // Random bytes: the zip cannot shrink them, so it takes seconds.
    const big = Buffer.alloc(64 * 1024 * 1024);
    for (let i = 0; i < big.length; i += 4) big.writeUInt32LE((Math.random() * 2 ** 32) >>> 0, i);
    form.set('input', new Blob([big]), 'noise.bin');
    const created = await fetch(`http://${HOSTS.app1}:8100/jobs`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${TOKENS.jobs}` },
      body: form,
    });
    expect(created.status).toBe(201);
    const job = (await created.json()) as { job_id: string };
    const read = async () =>
      (await (
        await fetch(`http://${HOSTS.app1}:8100/jobs/${job.job_id}`, {
          headers: { Authorization: `Bearer ${TOKENS.jobs}` },
        })
      ).json()) as { status: string; worker_id: string | null; attempt: number };
    const t0 = Date.now();
    const phase = (what: string) =>
      process.stdout.write(`cut-worker job: ${what} after ${Date.now() - t0} ms\n`);
    await waitFor(async () => (await read()).status === 'processing', 20_000, 20);
    const first = await read();
    const cut = first.worker_id as Host;
    expect(['w1', 'w2', 'w3']).toContain(cut);
    ip('link', 'set', veth(cut), 'down');
    phase(`processing on ${cut}, its link cut`);
    try {
      await waitFor(
        async () => {
          const j = await read();
          return j.attempt >= 2 && j.worker_id !== cut;
        },
        LEASE_MS * 4 + 10_000,
        100,
      );
      phase(`attempt 2 on ${(await read()).worker_id}`);
      // Generous: under CI's load the second worker shares two cores with every other test.
      await waitFor(async () => (await read()).status === 'completed', 150_000, 200);
      phase('completed');
    } catch (err) {
      // What the job API and the workers said, so a failure in CI can be read from its log.
      process.stdout.write(`job now: ${JSON.stringify(await read())}\n`);
      for (const p of procs.filter((p) => /^(worker|job)/.test(p.name)))
        process.stdout.write(`--- ${p.name}\n${p.log.join('').slice(-4000)}\n`);
      throw err;
    } finally {
      ip('link', 'set', veth(cut), 'up');
    }
    const done = await read();
    expect(done.worker_id).not.toBe(cut);
    // The cut-off worker comes back and reports; the job stays the other worker's.
    await new Promise((r) => setTimeout(r, LEASE_MS + 3000));
    const after = await read();
    expect(after).toMatchObject({ status: 'completed', worker_id: done.worker_id, attempt: done.attempt });
    const completed = seen.filter((e) => e.type.endsWith('job.completed') && e.data?.job_id === job.job_id);
    expect(completed).toHaveLength(1);
  }, 240_000);

  it('delivered every event once', () => {
    const ids = seen.map((e) => e.id);
    expect(new Set(ids).size).toBe(ids.length);
  });
});
