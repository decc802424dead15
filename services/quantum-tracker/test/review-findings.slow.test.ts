import { isoTime, shortError } from '../src/providers/http';
import { FakeIbm, FakeIonq } from './fake-providers';
import { get, isoAgo, post, type RunningTracker, startTracker } from './helpers';

/**
 * What a review of the tracker against IBM's and IonQ's real APIs (their specs and official
 * clients) found: each test is one way a real answer broke a sync, lost jobs or miscounted.
 */
describe('IBM: one bad job, a moving list, a lost job', () => {
  let ibm: FakeIbm;
  let t: RunningTracker | undefined;
  let now = Date.now();
  afterEach(async () => {
    await t?.close();
    t = undefined;
    await ibm?.close();
  });
  const start = async (fake: FakeIbm) => {
    now = Date.now();
    ibm = await fake.start();
    t = await startTracker({ ibm, now: () => now });
    return t;
  };
  const sync = async () => (await post(`${t!.url}/api/v1/dashboard/refresh`)).body.synced[0];
  const job = (id: string, minutes: number, extra: Partial<FakeIbm['jobs'][number]> = {}) => ({
    id,
    backend: 'ibm_brussels',
    status: 'Completed',
    created: isoAgo(minutes),
    running: isoAgo(minutes - 1),
    finished: isoAgo(minutes - 2),
    qpu_seconds: 2,
    ...extra,
  });

  test("a job whose /metrics fails is that job's problem, tried again later; 403 is like 404", async () => {
    const fake = new FakeIbm();
    fake.jobs = [job('ok', 30), job('broken', 20), job('hidden', 10)];
    fake.metricsFaults.set('broken', 500);
    fake.metricsFaults.set('hidden', 403);
    await start(fake);
    const first = await sync();
    expect(first).toMatchObject({ ok: true, jobs_detailed: 2, detail_errors: 1 });
    expect((await get(`${t!.url}/api/v1/jobs/ok`)).body.ended_at).not.toBeNull();
    // Usage was read, and the next sync reads only the window since this one.
    expect(ibm.calls.some((c) => c.path === '/instances/usage')).toBe(true);
    await sync();
    const windows = ibm.calls.filter((c) => c.path === '/jobs' && c.query.pending === undefined);
    expect(windows.at(-1)!.query.created_after).toBeDefined();
    // Not re-read at once (its retry waits), then read when due and the fault is gone.
    const reads = () => ibm.calls.filter((c) => c.path === '/jobs/broken/metrics').length;
    const before = reads();
    await sync();
    expect(reads()).toBe(before);
    fake.metricsFaults.delete('broken');
    now += 6 * 60_000;
    expect(await sync()).toMatchObject({ ok: true, detail_errors: 0 });
    expect((await get(`${t!.url}/api/v1/jobs/broken`)).body.ended_at).not.toBeNull();
    // The hidden one is never asked again.
    expect(ibm.calls.filter((c) => c.path === '/jobs/hidden/metrics')).toHaveLength(1);
  });

  test('a job submitted while the list is being read is recorded once, and none is skipped', async () => {
    const fake = new FakeIbm();
    fake.jobs = Array.from({ length: 450 }, (_, i) => job(`j-${i}`, 1000 - i));
    fake.beforePage = (page) => {
      if (page === 1) fake.jobs.push(job('late-arrival', 0));
      if (page === 2) fake.jobs.splice(5, 1); // and one deleted
    };
    await start(fake);
    expect(await sync()).toMatchObject({ ok: true });
    const total = (await get(`${t!.url}/api/v1/jobs?limit=1`)).body.total;
    expect(total).toBe(451);
    expect((await get(`${t!.url}/api/v1/jobs/late-arrival`)).status).toBe(200);
  });

  test('a list that does not move on, or has no count, ends instead of paging forever', async () => {
    const fake = new FakeIbm();
    fake.jobs = Array.from({ length: 300 }, (_, i) => job(`j-${i}`, 1000 - i));
    fake.ignorePaging = true;
    fake.omitCount = true;
    await start(fake);
    const r = await sync();
    expect(r.ok).toBe(true);
    expect(ibm.calls.filter((c) => c.path === '/jobs').length).toBeLessThanOrEqual(2);
  });

  test('an open job that left the list is read by id, and never holds the window open', async () => {
    const fake = new FakeIbm();
    fake.jobs = [job('stuck', 60 * 24 * 20, { status: 'Queued', running: undefined, finished: undefined })];
    await start(fake);
    await sync();
    fake.jobs = []; // IBM deleted it
    now += 10 * 60_000;
    await sync();
    const windows = ibm.calls.filter((c) => c.path === '/jobs' && c.query.pending === undefined);
    const after = Date.parse(windows.at(-1)!.query.created_after!);
    expect(now - after).toBeLessThan(20 * 60_000); // not 20 days back
    expect(ibm.calls.some((c) => c.path === '/jobs/stuck')).toBe(true);
    expect((await get(`${t!.url}/api/v1/jobs/stuck`)).body).toMatchObject({
      status: 'cancelled',
      raw_status: 'not found at IBM',
      backend: 'ibm_brussels',
    });
  });

  test('final billing is never undone, an end time missing at the first read is read again, negative usage is none', async () => {
    const fake = new FakeIbm();
    fake.jobs = [
      job('billed', 30),
      job('no-end', 20, { finished: undefined }),
      job('negative', 10, { qpu_seconds: -3 }),
    ];
    await start(fake);
    await sync();
    fake.jobs[0]!.usage_status = 'pending'; // a later read says less
    fake.jobs[0]!.status = 'Cancelled';
    await sync();
    const billed = (await get(`${t!.url}/api/v1/jobs/billed`)).body;
    expect(billed.billing).toBe('final');
    expect(billed.quantum_seconds).toBe(2);
    expect((await get(`${t!.url}/api/v1/jobs/negative`)).body.quantum_seconds).toBeNull();
    // The end time arrives later; the job is read again when its retry is due.
    fake.jobs[1]!.finished = isoAgo(1);
    now += 6 * 60_000;
    await sync();
    expect((await get(`${t!.url}/api/v1/jobs/no-end`)).body.ended_at).not.toBeNull();
  });
});

describe('IonQ: broken cursors and an endless list', () => {
  test('a cursor that is always new on a page that repeats ends the walk; stop() ends a slow sync', async () => {
    const ionq = await new FakeIonq().start();
    ionq.endlessCursor = true;
    ionq.jobs = Array.from({ length: 100 }, (_, i) => ({
      id: `q-${i}`,
      status: 'completed',
      backend: 'qpu.forte-1',
      submitted_at: isoAgo(i + 2),
      completed_at: isoAgo(i + 1),
    }));
    const t = await startTracker({ ionq });
    try {
      const r = (await post(`${t.url}/api/v1/jobs/sync`)).body.synced[0];
      expect(r.ok).toBe(true);
      expect(ionq.pages).toBeLessThan(10);
    } finally {
      await t.close();
      await ionq.close();
    }
  });
});

describe('provider values that broke a sync', () => {
  test('timestamps: epoch seconds or ms, out of range, and no zone', () => {
    expect(isoTime(1_700_000_000)).toBe('2023-11-14T22:13:20.000Z');
    expect(isoTime(1_700_000_000_000)).toBe('2023-11-14T22:13:20.000Z');
    expect(isoTime(1e16)).toBeNull();
    expect(isoTime(-5)).toBeNull();
    expect(isoTime('2026-12-01 10:00:00')).toBe('2026-12-01T10:00:00.000Z');
    expect(isoTime('2026-12-01T10:00:00+02:00')).toBe('2026-12-01T08:00:00.000Z');
    expect(isoTime('yesterday')).toBeNull();
  });

  test('a database error is stored and published without its SQL, and short', () => {
    const err = Object.assign(
      new Error(
        `insert into "jobs" ("id") values ('${'x'.repeat(50_000)}') - UNIQUE constraint failed: jobs.provider, jobs.id`,
      ),
      { sql: 'insert …' },
    );
    expect(shortError(err)).toBe('database: UNIQUE constraint failed: jobs.provider, jobs.id');
    expect(shortError(new Error('y'.repeat(5000))).length).toBeLessThanOrEqual(300);
  });
});
