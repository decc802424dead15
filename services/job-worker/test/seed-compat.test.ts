import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { type EmbeddedBroker, startEmbeddedBroker } from '@qlab/events';
import { ConfigError, silentLogger } from '@qlab/kit';
import { tempDir, waitFor } from '@qlab/testkit';
import mqtt from 'mqtt';
import request from 'supertest';
import { loadRemoteWorkerConfig, loadServerConfig } from '../src/config';
import { seedPayload, startSeedBroadcast } from '../src/seed-broadcast';
import { type RunningQueue, startQueue } from './helpers';

/** cl-server-shared's settings, events and JobRecord, as its users have them (seed 004). */
describe("cl-server-shared's settings", () => {
  it('reads the seed names as aliases; qlab names win; the poll interval is in seconds', () => {
    const c = loadServerConfig({
      CL_SERVER_DIR: '/srv/cl',
      STORE_DATABASE_URL: 'sqlite:////srv/cl/media_store.db',
      MEDIA_STORAGE_DIR: '/srv/cl/media',
      MQTT_BROKER: 'broker.lab',
      MQTT_PORT: '1884',
      WORKER_POLL_INTERVAL: '5',
    });
    expect(c).toMatchObject({
      dbUrl: 'sqlite:////srv/cl/media_store.db',
      storageDir: '/srv/cl/media',
      mqttUrl: 'mqtt://broker.lab:1884',
      worker: { pollIntervalMs: 5000 },
    });
    expect(c.aliasesUsed).toEqual(
      expect.arrayContaining([
        'CL_SERVER_DIR → DATA_DIR',
        'MQTT_BROKER → MQTT_URL',
        'WORKER_POLL_INTERVAL → WORKER_POLL_INTERVAL_MS',
      ]),
    );
    // DATABASE_URL and COMPUTE_STORAGE_DIR are the seed's second names for the same things.
    expect(loadServerConfig({ DATABASE_URL: 'postgres://h/db', COMPUTE_STORAGE_DIR: '/c' })).toMatchObject({
      dbUrl: 'postgres://h/db',
      storageDir: '/c',
    });
    expect(loadServerConfig({ MQTT_PORT: '2883' }).mqttUrl).toBe('mqtt://localhost:2883');
    expect(
      loadServerConfig({
        MQTT_URL: 'mqtt://q:1',
        MQTT_BROKER: 'seed',
        WORKER_POLL_INTERVAL: '9',
        WORKER_POLL_INTERVAL_MS: '250',
      }),
    ).toMatchObject({ mqttUrl: 'mqtt://q:1', worker: { pollIntervalMs: 250 } });
    expect(loadServerConfig({ WORKER_POLL_INTERVAL: '0.5' }).worker.pollIntervalMs).toBe(500);
    expect(
      loadRemoteWorkerConfig({ JOBS_URL: 'http://h', WORKER_POLL_INTERVAL: '2' }).worker.pollIntervalMs,
    ).toBe(2000);
    expect(() => loadServerConfig({ WORKER_POLL_INTERVAL: 'soon' })).toThrow(ConfigError);
    expect(() => loadServerConfig({ MQTT_PORT: '99999' })).toThrow('MQTT_PORT');
  });

  it('reads MQTT_BROKER in the forms people write it, and refuses what is not a broker', () => {
    const url = (env: NodeJS.ProcessEnv) => loadServerConfig(env).mqttUrl;
    expect(url({ MQTT_BROKER: 'mqtt://broker.lab' })).toBe('mqtt://broker.lab:1883');
    expect(url({ MQTT_BROKER: 'mqtts://broker.lab' })).toBe('mqtts://broker.lab:8883');
    expect(url({ MQTT_BROKER: 'mqtt://broker.lab:2883/' })).toBe('mqtt://broker.lab:2883');
    expect(url({ MQTT_BROKER: 'broker.lab:2883' })).toBe('mqtt://broker.lab:2883');
    expect(url({ MQTT_BROKER: 'broker.lab', MQTT_PORT: '1999' })).toBe('mqtt://broker.lab:1999');
    expect(url({ MQTT_BROKER: '::1' })).toBe('mqtt://[::1]:1883');
    expect(url({ MQTT_BROKER: '[::1]:2883' })).toBe('mqtt://[::1]:2883');
    for (const bad of ['evil/#', 'u:p@host', 'host/path', 'a b', 'mqtt://', '-x'])
      expect(() => loadServerConfig({ MQTT_BROKER: bad })).toThrow('MQTT_BROKER');
  });

  it('refuses a poll interval that was meant in ms, or that would overflow a timer', () => {
    // Older qlab read WORKER_POLL_INTERVAL in ms (default 1000): as seconds that is 17 minutes.
    expect(() => loadServerConfig({ WORKER_POLL_INTERVAL: '1000' })).toThrow('WORKER_POLL_INTERVAL_MS=1000');
    expect(() => loadServerConfig({ WORKER_POLL_INTERVAL: '3000000' })).toThrow(ConfigError);
    expect(() => loadServerConfig({ WORKER_POLL_INTERVAL_MS: '99999999999' })).toThrow(
      'WORKER_POLL_INTERVAL_MS',
    );
    expect(() => loadServerConfig({ JOBS_LEASE_MS: '99999999999' })).toThrow('JOBS_LEASE_MS');
    expect(loadServerConfig({ WORKER_POLL_INTERVAL: '60' }).worker.pollIntervalMs).toBe(60_000);
  });

  it('refuses a wildcard or empty-looking MQTT_TOPIC: one cannot publish there', () => {
    for (const bad of ['inference/#', 'a/+/b', 'x\u0000y'])
      expect(() => loadServerConfig({ MQTT_TOPIC: bad, MQTT_BROKER: 'b' })).toThrow('MQTT_TOPIC');
    expect(loadServerConfig({ MQTT_TOPIC: 'lab/jobs', MQTT_BROKER: 'b' }).seedTopic).toBe('lab/jobs');
  });

  it('lets a qlab variable given as a _FILE secret win over the seed name', () => {
    const tmp = tempDir();
    try {
      const secret = path.join(tmp.dir, 'db-url');
      writeFileSync(secret, 'postgres://qlab/jobs');
      expect(loadServerConfig({ JOBS_DB_URL_FILE: secret, DATABASE_URL: 'postgres://seed/db' }).dbUrl).toBe(
        'postgres://qlab/jobs',
      );
    } finally {
      tmp.cleanup();
    }
  });

  it('names variables that look like settings but that nothing reads', () => {
    const c = loadServerConfig({
      JOBS_LEASE: '5000',
      MQTT_HOST: 'x',
      AUTH_DATABASE_URL: 'y',
      JOBS_API_TOKEN_FILE: '/dev/null',
      HOME: '/root',
    });
    expect(c.unreadSettings).toEqual(['JOBS_LEASE', 'MQTT_HOST']);
  });

  it('needs a broker for seed-style events, and BROADCAST_TYPE other than mqtt means none', () => {
    expect(() => loadServerConfig({ MQTT_TOPIC: 'inference/events' })).toThrow('MQTT_URL');
    expect(loadServerConfig({ BROADCAST_TYPE: 'mqtt', MQTT_BROKER: 'b' }).seedTopic).toBe('inference/events');
    expect(loadServerConfig({ MQTT_TOPIC: 'lab/jobs', MQTT_URL: 'mqtt://b:1' }).seedTopic).toBe('lab/jobs');
    expect(loadServerConfig({ BROADCAST_TYPE: 'none', MQTT_URL: 'mqtt://b:1' }).seedTopic).toBeUndefined();
    expect(loadServerConfig({ MQTT_URL: 'mqtt://b:1' }).seedTopic).toBeUndefined();
  });
});

describe("cl-server-shared's job events and records", () => {
  let broker: EmbeddedBroker;
  let q: RunningQueue;
  beforeAll(async () => {
    broker = await startEmbeddedBroker({ port: 0 });
  });
  afterAll(async () => broker.close());
  afterEach(async () => q?.close());

  it('publishes each lifecycle step on MQTT_TOPIC in the seed shape, beside the CloudEvents', async () => {
    q = await startQueue({ broker });
    const relay = await startSeedBroadcast({
      mqttUrl: broker.url,
      topic: 'inference/events',
      logger: silentLogger(),
      clientId: `relay-${randomUUID()}`,
    });
    const seen: Record<string, unknown>[] = [];
    const sub = await mqtt.connectAsync(broker.url, { clientId: `seed-sub-${randomUUID()}` });
    sub.on('message', (_t, payload) => seen.push(JSON.parse(payload.toString())));
    await sub.subscribeAsync('inference/events', { qos: 1 });
    try {
      // A JobRecord as the seed's clients build it, sent as is.
      const jobId = randomUUID();
      await request(q.app)
        .post('/jobs')
        .send({
          job_id: jobId,
          task_type: 'image_resize',
          params: { width: 800 },
          status: 'queued',
          progress: 0,
          output: null,
          error_message: null,
        })
        .expect(201);
      const [claimed] = (
        await request(q.app)
          .post('/jobs/claim')
          .send({ worker_id: 'w1', task_types: ['image_resize'], max: 1 })
      ).body.jobs;
      await request(q.app)
        .patch(`/jobs/${jobId}`)
        .send({ worker_id: 'w1', attempt: claimed.attempt, progress: 50 })
        .expect(200);
      await request(q.app)
        .post(`/jobs/${jobId}/complete`)
        .send({ worker_id: 'w1', attempt: claimed.attempt, output: { result: 'success' } })
        .expect(200);
      await waitFor(() => seen.some((e) => e.event === 'completed'));
      expect(seen.map((e) => [e.event, e.status, e.progress])).toEqual([
        ['queued', 'queued', 0],
        ['started', 'processing', 0],
        ['progress', 'processing', 50],
        ['completed', 'completed', 100],
      ]);
      expect(seen.at(-1)).toMatchObject({
        job_id: jobId,
        task_type: 'image_resize',
        output: { result: 'success' },
        error_message: null,
      });
      expect(typeof seen[0]!.timestamp).toBe('number');
    } finally {
      await sub.endAsync();
      await relay.close();
    }
  });

  it("takes a seed JobRecord's fields only as a new job has them", async () => {
    q = await startQueue();
    for (const bad of [
      { status: 'processing' },
      { progress: 10 },
      { output: { x: 1 } },
      { error_message: 'no' },
      { started_at: 5 },
      { retry_count: 2 },
    ]) {
      const r = await request(q.app)
        .post('/jobs')
        .send({ task_type: 't', ...bad });
      expect([bad, r.status]).toEqual([bad, 400]);
    }
    // A whole record as a client may hold it: taken, with the server's own times.
    const full = await request(q.app).post('/jobs').send({
      job_id: 'whole-record',
      task_type: 't',
      params: {},
      status: 'queued',
      progress: 0,
      output: null,
      error_message: null,
      created_at: '2020-01-01T00:00:00Z',
      started_at: null,
      completed_at: null,
      retry_count: 0,
    });
    expect(full.status).toBe(201);
    expect(full.body.created_at).toBeGreaterThan(Date.parse('2024-01-01'));
  });

  it('reads every multipart field as the JSON member, and refuses the ones it would not keep', async () => {
    q = await startQueue();
    const form = (fields: Record<string, string>) => {
      const r = request(q.app).post('/jobs');
      for (const [k, v] of Object.entries(fields)) r.field(k, v);
      return r.attach('file', Buffer.from('x'), 'a.txt');
    };
    expect((await form({ task_type: 't', status: 'queued', progress: '0' })).status).toBe(201);
    expect((await form({ task_type: 't', status: 'completed' })).status).toBe(400);
    expect((await form({ task_type: 't', progress: '55' })).status).toBe(400);
    const withId = await form({ task_type: 't', job_id: 'mine-1' });
    expect(withId.status).toBe(400);
    expect(withId.body.detail).toContain('job_id');
    const unknown = await form({ task_type: 't', colour: 'blue' });
    expect(unknown.status).toBe(400);
    expect(unknown.body.detail).toContain('colour');
    // Nothing of the refused jobs is left: no rows, no folders.
    const list = await request(q.app).get('/jobs');
    expect(list.body.total).toBe(1);
  });

  it('takes updates and completions as JSON only, and refuses outputs it would not keep whole', async () => {
    q = await startQueue();
    await request(q.app).post('/jobs').send({ job_id: 'ct', task_type: 't' }).expect(201);
    const plain = await request(q.app).patch('/jobs/ct').set('Content-Type', 'text/plain').send('progress=5');
    expect(plain.status).toBe(415);
    const proto = await request(q.app)
      .patch('/jobs/ct')
      .set('Content-Type', 'application/json')
      .send('{"output":{"a":1,"__proto__":{"polluted":true}}}');
    expect(proto.status).toBe(400);
    expect((await request(q.app).get('/jobs/ct')).body.output).toBeNull();
    const done = await request(q.app)
      .post('/jobs/ct/complete')
      .set('Content-Type', 'application/json')
      .send('{"worker_id":"w","attempt":1,"output":{"deep":{"__proto__":{}}}}');
    expect(done.status).toBe(400);
  });

  it('updates progress and output by the lease holder or an admin, and nobody else', async () => {
    q = await startQueue();
    const job = (await request(q.app).post('/jobs').send({ task_type: 't' }).expect(201)).body;
    // Direct callers hold the service's own token: that is admin.
    await request(q.app).patch(`/jobs/${job.job_id}`).send({ progress: 5 }).expect(200);
    // Through the gateway, a write key needs the lease; an admin key does not.
    const viaGateway = (scopes: string) => ({
      'X-Qlab-Key-Id': '0123456789abcdef',
      'X-Qlab-Key-Scopes': scopes,
    });
    await request(q.app)
      .patch(`/jobs/${job.job_id}`)
      .set(viaGateway('read,write'))
      .send({ progress: 9 })
      .expect(403);
    await request(q.app)
      .patch(`/jobs/${job.job_id}`)
      .set(viaGateway('read,write,admin'))
      .send({ output: { note: 'x' } })
      .expect(200);
    const [claimed] = (
      await request(q.app)
        .post('/jobs/claim')
        .send({ worker_id: 'w', task_types: ['t'], max: 1 })
    ).body.jobs;
    await request(q.app)
      .patch(`/jobs/${job.job_id}`)
      .set(viaGateway('read,write'))
      .send({ worker_id: 'other', attempt: claimed.attempt, progress: 40 })
      .expect(409);
    const ok = await request(q.app)
      .patch(`/jobs/${job.job_id}`)
      .set(viaGateway('read,write'))
      .send({ worker_id: 'w', attempt: claimed.attempt, progress: 40 })
      .expect(200);
    expect(ok.body.progress).toBe(40);
    for (const bad of [{}, { progress: 101 }, { progress: 1, worker_id: 'w' }, { progress: 1, extra: 1 }])
      await request(q.app).patch(`/jobs/${job.job_id}`).send(bad).expect(400);
    await request(q.app).patch('/jobs/nope').send({ progress: 1 }).expect(404);
  });

  it('answers saved files with the seed’s hash beside sha256', async () => {
    q = await startQueue();
    const job = (await request(q.app).post('/jobs').send({ task_type: 't' }).expect(201)).body;
    const [claimed] = (
      await request(q.app)
        .post('/jobs/claim')
        .send({ worker_id: 'w', task_types: ['t'], max: 1 })
    ).body.jobs;
    expect(claimed.job_id).toBe(job.job_id);
    const saved = await request(q.app)
      .put(`/jobs/${job.job_id}/files/output/r.txt`)
      .send('hello')
      .expect(201);
    expect(saved.body).toMatchObject({
      relative_path: 'output/r.txt',
      size: 5,
      sha256: '2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824',
      hash: '2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824',
    });
  });

  it('maps only job events', () => {
    expect(seedPayload({ type: 'other', data: {} } as never)).toBeUndefined();
  });
});
