import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { tempDir } from '@qlab/testkit';
import request from 'supertest';
import { DOMAINS, recordColumns } from '../src/domain/domains';
import { openDomain } from '../src/open-domain';
import { GroupStates, TopValues, windowSize } from '../src/storage/group-state';
import { groupKey } from '../src/storage/summaries';
import { emptyState } from '../src/storage/summary-states';
import { sampleRecord } from './fixtures';
import { type RunningDomain, startDomain } from './helpers';

/**
 * The fast path for a few JSON records (storage/record-insert.ts) against what the staged load
 * gives for the same input: the same stored rows, the same refusals, and summaries equal to a
 * scan, with the p95 equal to DuckDB's to the last bit.
 */

describe('TopValues', () => {
  it('gives DuckDB quantile_cont exactly, or says its window is used up', async () => {
    const instance = await DuckDBInstance.create(':memory:');
    const conn = await instance.connect();
    const duck = async (values: number[]) => {
      const reader = await conn.runAndReadAll(
        `SELECT quantile_cont(v, 0.95)::DOUBLE AS q FROM (SELECT unnest($1::DOUBLE[]) AS v)`,
        [`[${values.join(',')}]`],
      );
      return reader.getRowObjectsJS()[0]!.q as number | null;
    };
    let seed = 7;
    const random = () => {
      seed = (seed * 1664525 + 1013904223) >>> 0;
      return seed / 2 ** 32;
    };
    let checked = 0;
    let exhausted = 0;
    for (const n of [0, 1, 2, 3, 19, 20, 21, 100, 1000, 5000]) {
      // Few distinct values in some runs, so ties sit at the window's edge.
      const pick = () => (n % 2 === 0 ? Math.round(random() * 1e6) / 1e3 : Math.floor(random() * 5));
      const values = Array.from({ length: n }, pick);
      const sorted = [...values].sort((a, b) => a - b);
      const k = windowSize(n, 0.95);
      const top = new TopValues(sorted.slice(n - k), n - k);
      expect(top.quantile(0.95)).toBe(await duck(values));
      checked++;
      // Then values one at a time, as single inserts bring them, nearly all below the window
      // (which uses it up: the p95's rank climbs 0.95 per value, the count below it 1).
      for (let i = 0; i < 8000; i++) {
        const v = i % 50 === 0 ? pick() + 1000 : pick() - 1000;
        values.push(v);
        top.add(v);
        const q = top.quantile(0.95);
        if (q === undefined) {
          exhausted++;
          break;
        }
        if (i % 97 === 0) {
          expect(q).toBe(await duck(values));
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThan(50);
    expect(exhausted).toBeGreaterThan(0);
    conn.closeSync();
    instance.closeSync();
  });
});

it('every domain’s primary metric is a DOUBLE column (the p95 windows hold doubles)', () => {
  for (const spec of Object.values(DOMAINS))
    expect(recordColumns(spec).find((c) => c.name === spec.primaryMetric)?.type).toBe('DOUBLE');
});

describe('TopValues trimming', () => {
  it('holds about a tenth of a group that started empty, and stays exact', async () => {
    const instance = await DuckDBInstance.create(':memory:');
    const conn = await instance.connect();
    const top = new TopValues([], 0);
    const values: number[] = [];
    for (let i = 0; i < 20_000; i++) {
      const v = (i * 7919) % 10_007;
      values.push(v);
      top.add(v);
    }
    expect(top.count).toBe(20_000);
    expect(top.held).toBeLessThanOrEqual(2 * windowSize(20_000, 0.95));
    const reader = await conn.runAndReadAll(
      'SELECT quantile_cont(v, 0.95)::DOUBLE AS q FROM (SELECT unnest($1::DOUBLE[]) AS v)',
      [`[${values.join(',')}]`],
    );
    expect(top.quantile(0.95)).toBe(reader.getRowObjectsJS()[0]!.q);
    conn.closeSync();
    instance.closeSync();
  });
});

describe('one-record writes', () => {
  let d: RunningDomain;
  let staged: RunningDomain;
  beforeEach(async () => {
    d = await startDomain('benchmark');
    staged = await startDomain('benchmark');
  });
  afterEach(async () => {
    await d?.cleanup();
    await staged?.cleanup();
  });

  /** Past the fast path's 64 records, a JSON list takes the staged load. */
  const padding = (prefix: string) =>
    Array.from({ length: 70 }, (_, i) => sampleRecord('benchmark', `${prefix}-pad-${i}`));

  const noTimes = (row: Record<string, unknown>) => {
    const { created_at: _c, ...rest } = row;
    return rest;
  };

  it('store the same rows as the staged load', async () => {
    const records = [
      sampleRecord('benchmark', 'odd-1', {
        hardware: null,
        tags: ['b', 'a', 'b'],
        started_at: '2026-10-01T05:30:00.123456789+05:30',
        error_message: 'nul \u0000 inside, quote \' and "',
        sequence_length: 2_147_483_647,
      }),
      sampleRecord('benchmark', 'odd-2', {
        hardware_metrics: null,
        model_metrics: undefined,
        latency_ms: -0,
      }),
      { model: 'no-id', status: 'running' },
    ];
    const fast = await request(d.base).post('/runs').send(records);
    expect(fast.status).toBe(201);
    const slow = await request(staged.base)
      .post('/runs')
      .send([...records.slice(0, 2), ...padding('x')]);
    expect(slow.status).toBe(201);
    for (const id of ['odd-1', 'odd-2']) {
      const a = await request(d.base).get(`/run/${id}`);
      const b = await request(staged.base).get(`/run/${id}`);
      expect(a.status).toBe(200);
      expect(noTimes(a.body)).toEqual(noTimes(b.body));
    }
    // A record without an id gets a UUID, as in the staged load.
    const generated = fast.body.ids[2];
    expect(generated).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect((await request(d.base).get(`/run/${generated}`)).body.status).toBe('running');
  });

  it('refuse repeated and existing ids with the staged load’s answers, and change nothing', async () => {
    const rec = (id: string) => sampleRecord('benchmark', id);
    for (const run of [d, staged])
      expect((await request(run.base).post('/runs').send(rec('taken'))).status).toBe(201);
    const before = await request(d.base).get('/models/stats');

    const twice = [rec('n1'), rec('dup'), rec('dup'), rec('n2')];
    const a = await request(d.base).post('/runs').send(twice);
    const b = await request(staged.base)
      .post('/runs')
      .send([...twice, ...padding('y')]);
    expect(a.status).toBe(422);
    expect(a.body.errors).toEqual(b.body.errors);
    expect(a.body.rejected).toBe(b.body.rejected);

    const existing = [rec('n3'), rec('taken')];
    const c = await request(d.base).post('/runs').send(existing);
    const e = await request(staged.base)
      .post('/runs')
      .send([...existing, ...padding('z')]);
    expect(c.status).toBe(409);
    expect(e.status).toBe(409);
    expect(c.body.errors).toEqual(e.body.errors);
    expect(c.body.detail).toBe(e.body.detail);

    expect((await request(d.base).get('/run/n1')).status).toBe(404);
    expect((await request(d.base).get('/models/stats')).body).toEqual(before.body);
  });

  it('keep the average of a whole-number metric exact, as DuckDB sums it', async () => {
    const g = await startDomain('generator');
    try {
      const rec = (id: string, output_bytes: number) => ({
        task_id: id,
        model: 'm',
        hardware: 'h',
        status: 'completed',
        started_at: '2026-11-20T10:00:00Z',
        output_bytes,
      });
      const avg = async () => {
        const stored = (await request(g.base).get('/models/stats')).body.models[0];
        const scanned = (await request(g.base).get('/models/stats?since=1970-01-01')).body.models[0];
        expect(stored.avg_output_bytes).toBe(scanned.avg_output_bytes);
        return stored.avg_output_bytes;
      };
      for (const [i, v] of [2 ** 53 - 1, 2, -(2 ** 53 - 1)].entries())
        expect(
          (
            await request(g.base)
              .post('/tasks')
              .send(rec(`t${i}`, v))
          ).status,
        ).toBe(201);
      expect(await avg()).toBeCloseTo(2 / 3, 15);
      // A sum past 2^53 divided once, not rounded first (…634.5 is the nearest double).
      const big = [...Array(6).fill(2 ** 53 - 1), ...Array(3).fill(-(2 ** 53 - 1)), 3, 1];
      for (const [i, v] of big.entries())
        expect(
          (
            await request(g.base)
              .post('/tasks')
              .send(rec(`u${i}`, v))
          ).status,
        ).toBe(201);
      await avg();
    } finally {
      await g.cleanup();
    }
  });

  it('take doubles of any size, as the staged load does, and keep taking writes to their group', async () => {
    const rec = (id: string, extra: Record<string, unknown> = {}) => ({
      run_id: id,
      model: 'm',
      hardware: 'h',
      status: 'completed',
      started_at: '2026-11-20T10:00:00Z',
      latency_ms: 5,
      ...extra,
    });
    // Whole doubles from 2^31 up were bound as integers, and from 2^63 failed to bind.
    for (const r of [
      rec('a', { memory_mb: 1e19 }),
      rec('b', { memory_mb: 5e18 }),
      rec('c', { memory_mb: 5e18, latency_ms: 3e9 }),
    ])
      expect((await request(d.base).post('/runs').send(r)).status).toBe(201);
    const child = rec('d', { hardware_metrics: [{ device_name: 'x', power_watts: 1e20 }] });
    expect((await request(d.base).post('/runs').send(child)).status).toBe(201);
    const bulk = await request(d.base)
      .post('/runs/bulk')
      .set('Content-Type', 'application/x-ndjson')
      .send(`${JSON.stringify(rec('big', { latency_ms: 1e19 }))}\n`);
    expect(bulk.status).toBe(201);
    expect((await request(d.base).post('/runs').send(rec('after'))).status).toBe(201);
    const stored = (await request(d.base).get('/performance?days=3650')).body;
    const scanned = (await request(d.base).get('/performance?days=3650&since=1970-01-01')).body;
    expect(JSON.stringify(stored, exactOnly)).toBe(JSON.stringify(scanned, exactOnly));
    expect(JSON.stringify(stored, rounded)).toBe(JSON.stringify(scanned, rounded));
    const slow = await request(staged.base)
      .post('/runs')
      .send([rec('d', { hardware_metrics: [{ device_name: 'x', power_watts: 1e20 }] }), ...padding('w')]);
    expect(slow.status).toBe(201);
    expect(noTimes((await request(d.base).get('/run/d')).body)).toEqual(
      noTimes((await request(staged.base).get('/run/d')).body),
    );
  });

  it('put records before 1970 on their own day, through every kind of write', async () => {
    const at = (iso: string, id: string) => ({
      run_id: id,
      model: 'm',
      status: 'completed',
      started_at: iso,
      latency_ms: 1,
    });
    await request(d.base)
      .post('/runs')
      .send([
        at('1969-12-31T23:00:00Z', 'p1'),
        at('1969-12-31T01:00:00Z', 'p2'),
        at('1970-01-01T00:30:00Z', 'p3'),
      ]);
    await request(d.base)
      .post('/runs')
      .send([
        at('1969-12-31T12:00:00Z', 'p4'),
        ...Array.from({ length: 70 }, (_, i) => at('1969-12-30T12:00:00Z', `q${i}`)),
      ]);
    expect((await request(d.base).delete('/run/p2')).status).toBe(200);
    // The last microseconds of a day before 1970 (epoch_ms truncated them into the next day),
    // then a staged load into that day and a delete from it.
    await request(d.base).post('/runs').send(at('1969-12-29T23:59:59.9995Z', 'edge'));
    await request(d.base)
      .post('/runs')
      .send(Array.from({ length: 70 }, (_, i) => at('1969-12-29T12:00:00Z', `e${i}`)));
    expect((await request(d.base).delete('/run/e3')).status).toBe(200);
    const stored = await d.domain.db.query(
      `SELECT day, total FROM benchmark_runs_summary WHERE grouping = 'day' ORDER BY day`,
    );
    const scanned = await d.domain.db.query(
      `SELECT floor(epoch_us(coalesce(started_at, created_at)) / 86400000000.0)::BIGINT AS day, count(*)::INTEGER AS total
       FROM benchmark_runs GROUP BY 1 ORDER BY 1`,
    );
    expect(stored).toEqual(scanned);
    expect(stored.slice(0, 4)).toEqual([
      { day: -3, total: 70 },
      { day: -2, total: 70 },
      { day: -1, total: 2 },
      { day: 0, total: 1 },
    ]);
  });

  it('count a completed batch’s own records in its batch.completed event, on both paths', async () => {
    for (const [run, n] of [
      [d, 3],
      [staged, 70],
    ] as const) {
      const runs = Array.from({ length: n }, (_, i) => sampleRecord('benchmark', `bc-${i}`));
      const res = await request(run.base)
        .post('/batches')
        .send({ batch_id: 'bc', status: 'completed', runs });
      expect(res.status).toBe(201);
      const [row] = await run.domain.db.query<{ payload: string }>(
        `SELECT payload FROM event_outbox WHERE payload LIKE '%batch.completed%'`,
      );
      expect(JSON.parse(row!.payload).data).toMatchObject({ batch_id: 'bc', total: n, succeeded: n });
    }
  });

  it('send text with a lone surrogate to the staged load, which refuses it as before', async () => {
    const body = `{"run_id":"s1","model":"m\\ud800","status":"completed"}`;
    const res = await request(d.base).post('/runs').set('Content-Type', 'application/json').send(body);
    const bulk = await request(staged.base)
      .post('/runs/bulk?strict=true')
      .set('Content-Type', 'application/x-ndjson')
      .send(`${body}\n`);
    expect(res.status).toBe(bulk.status);
    expect(res.body.errors).toEqual(bulk.body.errors);
    expect((await request(d.base).get('/run/s1')).status).toBe(404);
  });

  it('keep summaries equal to a scan through single inserts, reloads, deletes, bulk loads and rollbacks', async () => {
    const stats = async (path: string) => {
      const res = await request(d.base).get(path);
      expect(res.status).toBe(200);
      return res.body;
    };
    const check = async () => {
      for (const [stored, scanned] of [
        ['/models/stats', '/models/stats?since=1970-01-01'],
        ['/hardware/stats', '/hardware/stats?since=1970-01-01'],
        ['/performance?days=3650', '/performance?days=3650&since=1970-01-01'],
      ] as const) {
        const a = await stats(stored);
        const b = await stats(scanned);
        // The same rows; averages may differ in the last bits (sums taken in another order),
        // the p95, counts and extremes may not.
        expect(JSON.stringify(a, exactOnly)).toBe(JSON.stringify(b, exactOnly));
        expect(JSON.stringify(a, rounded)).toBe(JSON.stringify(b, rounded));
      }
      const { total, succeeded, failed, p95_latency_ms, last_at } = await stats('/stats');
      const [scan] = await d.domain.db.query(
        `SELECT count(*)::INTEGER AS total, count(*) FILTER (WHERE status = 'completed')::INTEGER AS succeeded,
                count(*) FILTER (WHERE status = 'failed')::INTEGER AS failed,
                quantile_cont(latency_ms, 0.95) AS p95_latency_ms, max(coalesce(started_at, created_at)) AS last_at
         FROM benchmark_runs`,
      );
      expect({ total, succeeded, failed, p95_latency_ms, last_at }).toEqual(scan);
    };
    const one = (id: string, i: number, extra: Record<string, unknown> = {}) =>
      sampleRecord('benchmark', id, {
        model: ['bert', 'gpt2', 'llama'][i % 3],
        hardware: [null, 'cpu', 'cuda', 'rocm'][i % 4],
        status: ['completed', 'failed', 'running'][i % 3],
        // Undated records fall on today (created_at); the rest spread over three days.
        started_at: i % 5 === 0 ? undefined : new Date(Date.UTC(2026, 10, 1 + (i % 3), 12)).toISOString(),
        latency_ms: i % 7 === 0 ? null : 1 + ((i * 37) % 200),
        throughput: i,
        memory_mb: i % 2 ? null : 10 * i,
        ...extra,
      });

    // A first load through the staged path, with high values.
    const first = await request(d.base)
      .post('/runs')
      .send(Array.from({ length: 100 }, (_, i) => one(`a-${i}`, i, { latency_ms: 1000 + i })));
    expect(first.status).toBe(201);
    await check();

    // Single inserts, mostly below the first load's values: the p95 windows run out and reload.
    for (let i = 0; i < 160; i++) {
      const res = await request(d.base)
        .post('/runs')
        .send(one(`s-${i}`, i));
      expect(res.status).toBe(201);
      if (i % 40 === 39) await check();
    }
    // A new model on new hardware, then on old hardware: the distinct counts grow.
    await request(d.base)
      .post('/runs')
      .send(one('new-1', 1, { model: 'phi', hardware: 'tpu' }));
    await request(d.base)
      .post('/runs')
      .send([
        one('new-2', 2, { model: 'phi', hardware: 'cpu' }),
        one('new-3', 3, { model: 'phi', hardware: null }),
      ]);
    await check();

    // A delete and a bulk load recompute their groups; the next single inserts start from those.
    expect((await request(d.base).delete('/run/s-3')).status).toBe(200);
    const bulk = Array.from({ length: 30 }, (_, i) => JSON.stringify(one(`b-${i}`, i + 1)));
    expect(
      (
        await request(d.base)
          .post('/runs/bulk')
          .set('Content-Type', 'application/x-ndjson')
          .send(bulk.join('\n'))
      ).status,
    ).toBe(201);
    for (let i = 0; i < 12; i++)
      expect(
        (
          await request(d.base)
            .post('/runs')
            .send(one(`t-${i}`, i))
        ).status,
      ).toBe(201);
    await check();

    // A write that fails after its groups were updated in the transaction: nothing of it stays,
    // in the tables or in what the next write starts from.
    const write = d.domain.db.write.bind(d.domain.db);
    const spy = jest.spyOn(d.domain.db, 'write').mockImplementationOnce((fn) =>
      write(async (tx) => {
        await fn(tx);
        throw new Error('fails before COMMIT');
      }),
    );
    const failed = await request(d.base)
      .post('/runs')
      .send(one('lost', 4, { latency_ms: 1e9 }));
    expect(failed.status).toBe(500);
    spy.mockRestore();
    expect((await request(d.base).get('/run/lost')).status).toBe(404);
    for (let i = 0; i < 8; i++)
      await request(d.base)
        .post('/runs')
        .send(one(`u-${i}`, i));
    await check();
    const perf = await stats('/performance?days=3650');
    expect(
      perf.by_model_hardware.every((r: { max_latency_ms: number | null }) => (r.max_latency_ms ?? 0) < 1e9),
    ).toBe(true);
  }, 120_000);
});

/** JSON.stringify replacers: averages left out, or every number rounded to 9 significant digits. */
function exactOnly(key: string, value: unknown) {
  return key.startsWith('avg_') ? undefined : value;
}
function rounded(_key: string, value: unknown) {
  return typeof value === 'number' ? Number(value.toPrecision(9)) : value;
}

describe('group states', () => {
  const state = (total: number) => ({ ...emptyState(DOMAINS.benchmark, 'day'), total });

  it('take from a warm-up only the groups no write touched since it began', () => {
    const states = new GroupStates();
    states.set('known', state(1));
    const token = states.beginWarm();
    states.set('written', state(5));
    states.forget(['deleted']);
    const seen = new Map([
      ['known', state(0)],
      ['written', state(4)],
      ['deleted', state(9)],
      ['quiet', state(7)],
    ]);
    expect(states.finishWarm(token, seen)).toBe(1);
    expect(states.get('known')?.total).toBe(1);
    expect(states.get('written')?.total).toBe(5);
    expect(states.get('deleted')).toBeUndefined();
    expect(states.get('quiet')?.total).toBe(7);

    // A write that recomputed everything meanwhile: the warm-up's view is stale throughout.
    const again = states.beginWarm();
    states.forget('all');
    expect(states.finishWarm(again, new Map([['quiet', state(7)]]))).toBe(0);
    expect(states.size).toBe(0);
  });

  it('read a used-up p95 window again, larger, and stay equal to a scan', async () => {
    const tmp = tempDir('qlab-analytics-window-');
    const domain = await openDomain({
      domain: 'benchmark',
      dbPath: path.join(tmp.dir, 'b.duckdb'),
      queryTimeoutMs: 10_000,
    });
    try {
      const day = '2026-11-02T10:00:00Z';
      const values = Array.from({ length: 300 }, (_, i) => (i * 7919) % 1000);
      // Staged (more than 64 records): every group is this one model, hardware and day.
      await domain.writes.loadRecords(
        values.map((v, i) => ({
          run_id: `w-${i}`,
          model: 'm',
          hardware: 'h',
          status: 'completed',
          started_at: day,
          latency_ms: v,
        })),
      );
      await domain.writes.warmed();
      const groups = domain.writes.groups;
      expect(groups.size).toBe(5);
      // Narrow every window to the least the p95 needs: the next value below it uses it up.
      const sorted = [...values].sort((a, b) => a - b);
      const need = sorted.length - Math.floor((sorted.length - 1) * 0.95);
      const keys = { model: 'm', hardware: 'h', day: Math.floor(Date.parse(day) / 86_400_000) };
      for (const g of ['model', 'hardware', 'model_hardware', 'day', 'all'] as const) {
        const key = groupKey(g, keys);
        const s = groups.get(key)!;
        groups.set(key, { ...s, top: new TopValues(sorted.slice(-need), sorted.length - need) });
      }
      for (let i = 0; i < 5; i++)
        await domain.writes.loadRecords([
          {
            run_id: `low-${i}`,
            model: 'm',
            hardware: 'h',
            status: 'failed',
            started_at: day,
            latency_ms: -i,
          },
        ]);
      const stored = await domain.queries.performance({}, 3650);
      const scanned = await domain.queries.performance({ since: '1970-01-01' } as never, 3650);
      expect(stored.by_model_hardware).toHaveLength(1);
      expect(JSON.stringify(stored, exactOnly)).toBe(JSON.stringify(scanned, exactOnly));
      const [model] = (await domain.queries.statsBy('model')).models as {
        p95_latency_ms: number;
        total: number;
      }[];
      expect(model!.total).toBe(305);
    } finally {
      await domain.db.close();
      tmp.cleanup();
    }
  });
});
