import request from 'supertest';
import { DOMAINS, type DomainName } from '../src/domain/domains';
import { summarySql } from '../src/storage/summaries';
import { sampleRecord } from './fixtures';
import { type RunningDomain, startDomain } from './helpers';

/** Equal, with numbers allowed to differ in the last bits (sums taken in another order). */
function expectSame(actual: unknown, expected: unknown, where = '$'): void {
  if (typeof expected === 'number' && typeof actual === 'number') {
    expect({ where, close: Math.abs(actual - expected) <= 1e-9 * Math.max(1, Math.abs(expected)) }).toEqual({
      where,
      close: true,
    });
    return;
  }
  if (expected !== null && typeof expected === 'object') {
    expect({ where, keys: Object.keys(actual as object) }).toEqual({ where, keys: Object.keys(expected) });
    for (const [k, v] of Object.entries(expected))
      expectSame((actual as Record<string, unknown>)[k], v, `${where}.${k}`);
    return;
  }
  expect({ where, value: actual }).toEqual({ where, value: expected });
}

type HardwareRow = { total: number; hardware: string | null };
const byTotalThenHardware = (a: HardwareRow, b: HardwareRow) =>
  b.total - a.total || String(a.hardware).localeCompare(String(b.hardware));

const MODELS = ['bert', 'gpt2', 'llama-7b'];
const HARDWARE = ['cpu', 'cuda', null];

/** Records spread over models, hardware (some none), statuses and days (some undated). */
function records(domain: DomainName, prefix: string, n: number, statuses: string[], days = 4) {
  return Array.from({ length: n }, (_, i) =>
    sampleRecord(domain, `${prefix}-${i}`, {
      model: MODELS[i % MODELS.length],
      hardware: HARDWARE[Math.floor(i / 3) % HARDWARE.length],
      status: statuses[i % statuses.length],
      started_at: i % 5 === 0 ? undefined : new Date(Date.now() - (i % days) * 86_400_000).toISOString(),
      duration_ms: 100 + ((i * 37) % 1000),
      ...(domain === 'benchmark'
        ? { latency_ms: 1 + ((i * 13) % 97), throughput: i, memory_mb: 10 * i }
        : {}),
    }),
  );
}

const STATUSES: Record<DomainName, string[]> = {
  test: ['passed', 'failed', 'error', 'passed', 'skipped'],
  generator: ['completed', 'failed', 'completed', 'running'],
  benchmark: ['completed', 'failed', 'completed', 'running'],
};

describe.each(['test', 'generator', 'benchmark'] as DomainName[])('summaries of the %s domain', (domain) => {
  let d: RunningDomain;
  afterEach(async () => {
    await d?.cleanup();
  });

  /** Answers from the summary table, and the same questions answered by scanning the records. */
  async function answers(run: RunningDomain) {
    const get = async (path: string) => {
      const res = await request(run.base).get(path);
      expect(res.status).toBe(200);
      return res.body;
    };
    // Any filter sends the query to the records; this one matches every record.
    const all = 'since=1970-01-01';
    const stored = {
      models: await get('/models/stats'),
      hardware: await get('/hardware/stats'),
      performance: await get('/performance?days=3650'),
      model: await get('/models/llama-7b?recent=0'),
      stats: await get('/stats'),
    };
    const spec = DOMAINS[domain];
    const [totals] = await run.domain.db.query(`SELECT ${summarySql(spec)} FROM ${spec.table} r`);
    const scanned = {
      models: await get(`/models/stats?${all}`),
      hardware: await get(`/hardware/stats?${all}`),
      performance: await get(`/performance?days=3650&${all}`),
      totals,
    };
    return { stored, scanned };
  }

  function expectConsistent({ stored, scanned }: Awaited<ReturnType<typeof answers>>) {
    expectSame(stored.models, scanned.models);
    expectSame(stored.hardware, scanned.hardware);
    expectSame(stored.performance, scanned.performance);
    // The overview's totals are the stored `all` group: the same as an aggregate of every record.
    const {
      domain: _o,
      total_runs: _a,
      total_tasks: _b,
      total_batches: _c,
      by_status: _s,
      models: _m0,
      hardware_platforms: _h0,
      last_24h: _l,
      ...totals
    } = stored.stats;
    expectSame(totals, scanned.totals);
    // The overview counts models and hardware platforms from the stored groups; no hardware is none.
    expect(stored.stats.models).toBe(scanned.models.models.length);
    expect(stored.stats.hardware_platforms).toBe(
      scanned.hardware.hardware.filter((h: { hardware: string | null }) => h.hardware !== null).length,
    );
    // A model's summary is its row of the model stats, and its hardware rows those of the report.
    if (stored.model.total === 0) return;
    const {
      model,
      domain: _d,
      by_hardware,
      [`recent_${domain === 'generator' ? 'tasks' : 'runs'}`]: _r,
      first_at,
      ...summary
    } = stored.model;
    expect(model).toBe('llama-7b');
    expect(typeof first_at).toBe('string');
    const {
      model: _m,
      hardware_count: _h,
      ...row
    } = scanned.models.models.find((m: { model: string }) => m.model === 'llama-7b');
    expectSame(summary, row);
    const m = domain === 'benchmark' ? 'latency_ms' : 'duration_ms';
    const reportRows = scanned.performance.by_model_hardware
      .filter((r: { model: string }) => r.model === 'llama-7b')
      .map(({ model: _x, [`min_${m}`]: _min, [`max_${m}`]: _max, ...r }: Record<string, unknown>) => r)
      .sort(byTotalThenHardware);
    expectSame([...by_hardware].sort(byTotalThenHardware), reportRows);
  }

  // The timeout is a hang guard, not a speed check: thousands of rows and a restart, on a 2-core
  // machine shared with the other slow suites.
  test('stay equal to a scan of the records through inserts, failed loads, deletes and a restart', async () => {
    d = await startDomain(domain);
    const many = domain === 'generator' ? 'tasks' : 'runs';
    const one = domain === 'generator' ? 'task' : 'run';
    const statuses = STATUSES[domain];

    // Empty: nothing stored, nothing scanned, and a model without records has zero counts.
    let a = await answers(d);
    expect(a.stored.models.models).toEqual([]);
    expect(a.stored.model.total).toBe(0);
    expect(a.stored.model.by_hardware).toEqual([]);
    expectSame(a.stored.performance, a.scanned.performance);

    // The first load touches every group: all are recomputed.
    const first = await request(d.base)
      .post(`/${many}`)
      .send(records(domain, 'a', 200, statuses));
    expect(first.status).toBe(201);
    a = await answers(d);
    expect(a.stored.models.models.map((m: { model: string }) => m.model).sort()).toEqual([...MODELS].sort());
    expect(a.stored.model.total).toBeGreaterThan(0);
    expectConsistent(a);

    // More touched groups than are named in statements (a day each): joined against.
    const spread = await request(d.base)
      .post(`/${many}`)
      .send(records(domain, 'e', 70, statuses, 1000));
    expect(spread.status).toBe(201);
    expectConsistent(await answers(d));

    // A batch with its records, then one more record alone.
    const batch = await request(d.base)
      .post('/batches')
      .send({ batch_id: 'b1', status: 'running', [many]: records(domain, 'b', 12, statuses) });
    expect(batch.status).toBe(201);
    expect(
      (
        await request(d.base)
          .post(`/${many}`)
          .send(records(domain, 'c', 1, statuses)[0]!)
      ).status,
    ).toBe(201);
    expectConsistent(await answers(d));

    // A strict bulk load with a bad line changes nothing.
    const before = await answers(d);
    const good = records(domain, 'd', 5, statuses).map((r) => JSON.stringify(r));
    const strict = await request(d.base)
      .post(`/${many}/bulk?strict=true`)
      .set('Content-Type', 'application/x-ndjson')
      .send(`${good.join('\n')}\n{"model":\n`);
    expect(strict.status).toBe(422);
    expectSame(await answers(d), before);

    // Deletes: one record, then the batch (its records go too).
    expect((await request(d.base).delete(`/${one}/a-2`)).status).toBe(200);
    expect((await request(d.base).delete('/batch/b1')).status).toBe(200);
    a = await answers(d);
    expectConsistent(a);
    expect(a.stored.models.models.reduce((n: number, m: { total: number }) => n + m.total, 0)).toBe(270);

    // Every record of a model gone: its groups go with it.
    for (let i = 5; i < 200; i += 3) await request(d.base).delete(`/${one}/a-${i}`);
    for (let i = 2; i < 70; i += 3) await request(d.base).delete(`/${one}/e-${i}`);
    a = await answers(d);
    expectConsistent(a);
    expect(a.stored.models.models.map((m: { model: string }) => m.model)).not.toContain('llama-7b');
    expect(a.stored.model.total).toBe(0);

    // The table is rebuilt from the records at start: the same answers after a restart.
    await d.stop();
    const again = await startDomain(domain, { dir: d.dir });
    try {
      expectSame(await answers(again), a);
    } finally {
      await again.stop();
    }
  }, 180_000);
});
