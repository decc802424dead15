import { pgTestUrl, waitFor } from '@qlab/testkit';
import { FakeIbm, FakeIonq } from './fake-providers';
import { get, isoAgo, post, type RunningTracker, startTracker } from './helpers';

/** Each test here is one thing a real IBM or IonQ API does that the first tracker got wrong. */

const minutesAgo = isoAgo;
const pg = pgTestUrl('quantum-tracker fidelity');

const engines: [string, string | undefined][] = [
  ['SQLite', undefined],
  ...(pg ? [['PostgreSQL', pg] as [string, string]] : []),
];

describe.each(engines)('IBM Quantum Platform as it really answers (%s)', (_engine, pgUrl) => {
  describe('', () => {
    let ibm: FakeIbm;
    let t: RunningTracker | undefined;
    afterEach(async () => {
      await t?.close();
      t = undefined;
      await ibm?.close();
    });
    const start = async (fake: FakeIbm, options: Parameters<typeof startTracker>[0] = {}) => {
      ibm = await fake.start();
      t = await startTracker({ ibm, pgUrl, ...options });
      return t;
    };

    test('is reached at the host of the instance region, through the IAM of its cloud', async () => {
      const fake = new FakeIbm('eu-de');
      fake.backends = [{ name: 'ibm_brussels', status: 'online', queue_length: 2, wait: 30 }];
      const tr = await start(fake);
      const res = await post(`${tr.url}/api/v1/dashboard/refresh`);
      expect(res.body.synced[0]).toMatchObject({ ok: true, backends_seen: 1 });
      expect(new Set(ibm.calls.map((c) => c.host))).toEqual(new Set(['eu-de.quantum.cloud.ibm.com']));
      expect(ibm.hostsTried).toContain('iam.cloud.ibm.com');
      // The wait comes only because the client asks for it (fields=wait_time_seconds).
      expect((await get(`${tr.url}/api/v1/backends/ibm_brussels`)).body.wait_seconds_avg).toBe(30);
    });

    test('us-east is quantum.cloud.ibm.com, and staging instances use the staging IAM', async () => {
      const tr = await start(new FakeIbm('us-east', 'staging'), {
        env: { IBM_QUANTUM_API_URL: 'https://quantum.test.cloud.ibm.com/api' },
      });
      expect((await post(`${tr.url}/api/v1/backends/sync`)).body.synced[0].ok).toBe(true);
      expect(ibm.calls.every((c) => c.host === 'quantum.test.cloud.ibm.com')).toBe(true);
      expect(ibm.hostsTried).toContain('iam.test.cloud.ibm.com');
      expect(ibm.hostsTried).not.toContain('iam.cloud.ibm.com');
    });

    test('start and end times come from /metrics, so queue and run times and their averages are filled', async () => {
      const fake = new FakeIbm();
      fake.jobs = [
        {
          id: 'j-done',
          backend: 'ibm_brussels',
          status: 'Completed',
          created: minutesAgo(30),
          running: minutesAgo(20),
          finished: minutesAgo(18),
          qpu_seconds: 7,
        },
        { id: 'j-queued', backend: 'ibm_brussels', status: 'Queued', created: minutesAgo(5) },
      ];
      const tr = await start(fake);
      const first = await post(`${tr.url}/api/v1/jobs/sync`);
      expect(first.body.synced[0]).toMatchObject({ ok: true, jobs_detailed: 1 });
      const done = (await get(`${tr.url}/api/v1/jobs/j-done`)).body;
      expect(done.started_at).toBe(new Date(Date.parse(fake.jobs[0]!.running!)).toISOString());
      expect(done.queue_seconds).toBeCloseTo(600, 0);
      expect(done.run_seconds).toBeCloseTo(120, 0);
      const overview = (await get(`${tr.url}/api/v1/jobs/stats/overview`)).body;
      expect(overview.avg_queue_seconds).toBeCloseTo(600, 0);
      expect(overview.avg_run_seconds).toBeCloseTo(120, 0);

      // The queued job starts, then finishes: each change is read from /metrics once.
      fake.jobs[1]!.status = 'Running';
      fake.jobs[1]!.running = minutesAgo(1);
      await post(`${tr.url}/api/v1/jobs/sync`);
      expect((await get(`${tr.url}/api/v1/jobs/j-queued`)).body.started_at).not.toBeNull();
      fake.jobs[1]!.status = 'Completed';
      fake.jobs[1]!.finished = minutesAgo(0);
      fake.jobs[1]!.qpu_seconds = 3;
      await post(`${tr.url}/api/v1/jobs/sync`);
      const metricsCalls = () => ibm.calls.filter((c) => c.path.endsWith('/metrics')).map((c) => c.path);
      expect(metricsCalls()).toEqual([
        '/jobs/j-done/metrics',
        '/jobs/j-queued/metrics',
        '/jobs/j-queued/metrics',
      ]);
      expect((await get(`${tr.url}/api/v1/jobs/j-queued`)).body.run_seconds).not.toBeNull();
      // Nothing changed: nothing is re-read.
      await post(`${tr.url}/api/v1/jobs/sync`);
      expect(metricsCalls()).toHaveLength(3);
    });

    test('billing counts only when IBM says complete, and pending jobs are re-read however old', async () => {
      const fake = new FakeIbm();
      fake.jobs = [
        {
          id: 'old',
          backend: 'b',
          status: 'Completed',
          created: minutesAgo(60 * 24 * 20),
          running: minutesAgo(60 * 24 * 20 - 5),
          finished: minutesAgo(60 * 24 * 20 - 10),
          qpu_seconds: 11,
          usage_status: 'pending',
        },
      ];
      const tr = await start(fake);
      await post(`${tr.url}/api/v1/dashboard/refresh`);
      let job = (await get(`${tr.url}/api/v1/jobs/old`)).body;
      expect(job).toMatchObject({ billing: 'pending', quantum_seconds: 0 });
      const pending = (await get(`${tr.url}/api/v1/analytics/cost-analysis?days=30`)).body;
      expect(pending.billing_pending_jobs).toBe(1);
      // Several syncs later (the job is weeks old, outside every incremental window) IBM finishes counting.
      await post(`${tr.url}/api/v1/jobs/sync`);
      fake.jobs[0]!.usage_status = 'complete';
      await post(`${tr.url}/api/v1/jobs/sync`);
      job = (await get(`${tr.url}/api/v1/jobs/old`)).body;
      expect(job).toMatchObject({ billing: 'final', quantum_seconds: 11 });
      const cost = (await get(`${tr.url}/api/v1/analytics/cost-analysis?days=30`)).body;
      expect(cost).toMatchObject({ total_quantum_seconds: 11, billing_pending_jobs: 0 });
      // Final: no more reads of it.
      const reads = ibm.calls.filter((c) => c.path === '/jobs/old/metrics').length;
      await post(`${tr.url}/api/v1/jobs/sync`);
      expect(ibm.calls.filter((c) => c.path === '/jobs/old/metrics').length).toBe(reads);
    });

    test("several members' keys of one instance: every member's jobs, the backends once", async () => {
      const fake = new FakeIbm();
      fake.backends = [{ name: 'ibm_brussels', status: 'online', queue_length: 1 }];
      fake.jobs = [
        {
          id: 'a1',
          backend: 'ibm_brussels',
          status: 'Completed',
          created: minutesAgo(3),
          owner: 'ibm-key-alice',
        },
        { id: 'b1', backend: 'ibm_brussels', status: 'Queued', created: minutesAgo(2), owner: 'ibm-key-bob' },
        {
          id: 'b2',
          backend: 'ibm_brussels',
          status: 'Completed',
          created: minutesAgo(1),
          owner: 'ibm-key-bob',
        },
      ];
      const tr = await start(fake, { ibmToken: 'alice:ibm-key-alice,bob:ibm-key-bob' });
      const res = await post(`${tr.url}/api/v1/dashboard/refresh`);
      expect(res.body.synced.map((s: { provider: string; ok: boolean }) => [s.provider, s.ok])).toEqual([
        ['ibm:alice', true],
        ['ibm:bob', true],
      ]);
      expect(ibm.calls.filter((c) => c.path === '/backends')).toHaveLength(1);
      const jobs = (await get(`${tr.url}/api/v1/jobs`)).body;
      expect(jobs.jobs.map((j: { id: string }) => j.id).sort()).toEqual(['a1', 'b1', 'b2']);
      expect(new Set(jobs.jobs.map((j: { provider: string }) => j.provider))).toEqual(new Set(['ibm']));
      const status = (await get(`${tr.url}/api/v1/dashboard/system-status`)).body;
      expect(status.providers_configured).toEqual(['ibm:alice', 'ibm:bob']);
      expect(status.jobs_scope).toMatch(/key owner/);
    });

    test('a database failure mid-sync is recorded as a failed sync; the process keeps running', async () => {
      const fake = new FakeIbm();
      fake.jobs = [{ id: 'j', backend: 'b', status: 'Completed', created: minutesAgo(1) }];
      const tr = await start(fake);
      const unhandled: unknown[] = [];
      const onUnhandled = (e: unknown) => unhandled.push(e);
      process.on('unhandledRejection', onUnhandled);
      try {
        // The provider answers slowly; the database goes away while it does.
        fake.delayMs = 300;
        const sync = tr.tracker.syncs[0]!;
        const pending = sync.sync('all');
        await waitFor(() => ibm.calls.some((c) => c.path === '/backends'));
        if (pgUrl) await killPostgres(tr);
        else await tr.knex.destroy();
        const report = await pending;
        expect(report.ok).toBe(false);
        // The timer path too: a scheduled sync on a dead database settles and reschedules.
        fake.delayMs = 0;
        sync.start();
        await new Promise((r) => setTimeout(r, 300));
        await sync.stop();
        expect(unhandled).toEqual([]);
      } finally {
        process.off('unhandledRejection', onUnhandled);
      }
    });
  });
});

/** Ends this tracker's PostgreSQL sessions (pg_terminate_backend) and drops its schema, from another connection. */
async function killPostgres(tr: RunningTracker): Promise<void> {
  const pool = (
    tr.knex.client as {
      pool: { used: { resource: { processID: number } }[]; free: { resource: { processID: number } }[] };
    }
  ).pool;
  const pids = [...pool.used, ...pool.free].map((r) => r.resource.processID);
  const schema = (tr.knex.client.config.searchPath as string[])[0]!;
  const { openDatabase, parseDbUrl } = await import('@qlab/kit');
  const admin = await openDatabase({ target: parseDbUrl(pg!), migrations: {} });
  try {
    await admin.raw('drop schema if exists ?? cascade', [schema]);
    for (const pid of pids) await admin.raw('select pg_terminate_backend(?)', [pid]);
  } finally {
    await admin.destroy();
  }
}

describe('IonQ as it really answers', () => {
  let ionq: FakeIonq;
  let t: RunningTracker | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
    await ionq?.close();
  });

  const jobs = (n: number, from = 0) =>
    Array.from({ length: n }, (_, i) => ({
      id: `00000000-0000-4000-8000-${String(from + i).padStart(12, '0')}`,
      status: 'completed',
      backend: 'qpu.forte-1',
      submitted_at: minutesAgo(1000 - from - i),
      completed_at: minutesAgo(999 - from - i),
      billed_us: 1_000_000,
    }));

  test.each(Array.from({ length: 12 }, (_, i) => i))(
    'a list in no order (shuffle %i): new open jobs anywhere, and open jobs deep in it, are all found',
    async (seed) => {
      ionq = await new FakeIonq().start();
      ionq.seed = seed * 7919;
      ionq.jobs = jobs(350);
      const open = ionq.jobs[7]!;
      open.status = 'ready';
      open.completed_at = undefined;
      let now = Date.now();
      t = await startTracker({ ionq, env: { IONQ_FULL_SYNC_EVERY: '24h' }, now: () => now });
      expect((await post(`${t.url}/api/v1/jobs/sync`)).body.synced[0]).toMatchObject({
        ok: true,
        jobs_seen: 350,
      });
      // New jobs land at random places of a shuffled list, still waiting; the open one finishes.
      const fresh = jobs(5, 1000).map((j, i) => ({
        ...j,
        status: i % 2 ? 'submitted' : 'ready',
        completed_at: undefined,
      }));
      ionq.jobs.push(...fresh);
      open.status = 'completed';
      open.completed_at = minutesAgo(0);
      const second = (await post(`${t.url}/api/v1/jobs/sync`)).body.synced[0];
      expect(second.ok).toBe(true);
      for (const j of fresh)
        expect((await get(`${t.url}/api/v1/jobs/${j.id}`)).body.status).toBe(
          j.status === 'ready' ? 'queued' : 'validating',
        );
      expect((await get(`${t.url}/api/v1/jobs/${open.id}`)).body.status).toBe('completed');
      expect(ionq.idCalls.flat()).toContain(open.id);
      expect(ionq.idCalls.flat().every((id) => !id.includes(','))).toBe(true);
      // A job that was submitted and finished between two syncs, deep in the list, may wait for
      // the periodic full read; it is found there.
      const quick = { ...jobs(1, 2000)[0]!, id: 'quick-one' };
      ionq.jobs.push(quick);
      now += 25 * 3600_000;
      await post(`${t.url}/api/v1/jobs/sync`);
      expect((await get(`${t.url}/api/v1/jobs/quick-one`)).body.status).toBe('completed');
    },
  );

  test('v0.3 execution_time, 52x retries, backend location, and organization usage', async () => {
    ionq = await new FakeIonq().start();
    ionq.backends = [
      {
        backend: 'qpu.forte-1',
        status: 'available',
        qubits: 36,
        average_queue_time: 1_181_215,
        location: 'College Park, MD, USA',
      },
    ];
    ionq.jobs = [{ ...jobs(1)[0]!, billed_us: undefined, v03_execution_ms: 2500 }];
    t = await startTracker({ ionq, env: { IONQ_ORGANIZATION_ID: ionq.organizationId } });
    ionq.fault = { status: 526, times: 1 };
    const res = (await post(`${t.url}/api/v1/dashboard/refresh`)).body.synced[0];
    expect(res).toMatchObject({ ok: true, backends_seen: 1, jobs_seen: 1 });
    expect((await get(`${t.url}/api/v1/jobs/${ionq.jobs[0]!.id}`)).body.quantum_seconds).toBe(2.5);
    const forte = (await get(`${t.url}/api/v1/backends/qpu.forte-1`)).body;
    expect(forte).toMatchObject({ region: 'College Park, MD, USA', wait_seconds_avg: 1181.215 });
    const usage = (await get(`${t.url}/api/v1/dashboard/metrics`)).body.usage;
    expect(usage).toEqual([expect.objectContaining({ provider: 'ionq', consumed_seconds: 1.5661543 })]);
    expect(ionq.usageQueries[0]).toMatchObject({ group_by: 'project', modality: 'monthly' });
  });

  test('a persistent 52x is a failed sync that says so, and the next one recovers', async () => {
    ionq = await new FakeIonq().start();
    ionq.jobs = jobs(3);
    t = await startTracker({ ionq });
    ionq.fault = { status: 522, times: 10 };
    const failed = (await post(`${t.url}/api/v1/jobs/sync`)).body.synced[0];
    expect(failed).toMatchObject({ ok: false });
    expect(failed.error).toMatch(/522/);
    ionq.fault = undefined;
    await waitFor(async () => (await post(`${t!.url}/api/v1/jobs/sync`)).body.synced[0].ok === true);
  });
});
