import { createHash } from 'node:crypto';
import path from 'node:path';
import { type LocalS3, startLocalS3 } from '@qlab/blob-store/testing';
import { silentLogger } from '@qlab/kit';
import { tempDir } from '@qlab/testkit';
import { compose } from '../src/compose';
import { DOMAINS } from '../src/domain/domains';
import { DuckDb } from '../src/storage/duck';
import { sampleRecord } from './fixtures';
import { call, type RunningDomain, startDomain } from './helpers';

const spec = DOMAINS.test;

async function lakeObjects(d: RunningDomain): Promise<Map<string, string>> {
  const { FileBlobStore } = await import('@qlab/blob-store');
  const store = await FileBlobStore.open(d.dir);
  const out = new Map<string, string>();
  for await (const o of store.list('lake/')) {
    const body = await store.get(o.key);
    const h = createHash('sha256');
    for await (const c of body!) h.update(c as Buffer);
    out.set(o.key, h.digest('hex'));
  }
  return out;
}

/** Reads the lake as an analyst elsewhere would: DuckDB over the Parquet files, Hive partitions. */
async function readLake(dir: string, table: string, select: string): Promise<Record<string, unknown>[]> {
  const duck = await DuckDb.open(':memory:', { queryTimeoutMs: 10_000 });
  try {
    const glob = path.join(dir, 'lake', 'test', table, '*', '*.parquet');
    return await duck.query(
      `SELECT ${select} FROM read_parquet('${glob}', hive_partitioning = true) GROUP BY ALL ORDER BY ALL`,
    );
  } finally {
    duck.close();
  }
}

describe('the lake export', () => {
  let d: RunningDomain;
  beforeEach(async () => {
    d = await startDomain('test');
    const records = [
      sampleRecord('test', 'r1', { started_at: '2026-11-28T23:59:59Z' }),
      sampleRecord('test', 'r2', { started_at: '2026-11-29T00:00:00Z' }),
      sampleRecord('test', 'r3', { started_at: '2026-11-29T12:00:00+05:00' }),
      sampleRecord('test', 'r4', { started_at: '2026-11-30T08:00:00Z' }),
    ];
    expect((await call(`${d.base}/runs`, { body: records })).status).toBe(201);
  });
  afterEach(() => d.cleanup());

  it('writes Hive-partitioned Parquet by UTC day that DuckDB reads back, children with their record', async () => {
    const res = await call(`${d.base}/export/lake`, { method: 'POST' });
    expect(res.status).toBe(200);
    expect(res.body.since).toBeNull();
    const byTable = Object.fromEntries(res.body.tables.map((t: { table: string }) => [t.table, t]));
    expect(byTable[spec.table]).toEqual({ table: spec.table, days: 3, rows: 4 });
    expect(byTable[spec.tagsTable]).toMatchObject({ days: 3, rows: 8 });
    expect(byTable[spec.children[0]!.table]).toMatchObject({ days: 3, rows: 8 });
    const days = await readLake(d.dir, spec.table, 'day::VARCHAR AS day, count(*)::INTEGER AS n');
    expect(days.map((r) => [String(r.day), r.n])).toEqual([
      ['2026-11-28', 1],
      ['2026-11-29', 2],
      ['2026-11-30', 1],
    ]);
    const keys = [...(await lakeObjects(d)).keys()];
    expect(keys).toContain(`lake/test/${spec.table}/day=2026-11-29/data_0.parquet`);
    expect(keys.every((k) => /^lake\/test\/[a-z_]+\/day=\d{4}-\d{2}-\d{2}\/data_0\.parquet$/.test(k))).toBe(
      true,
    );
  });

  it('is idempotent, drops a day that lost its rows, and rewrites only the days from `since`', async () => {
    await call(`${d.base}/export/lake`, { method: 'POST' });
    const first = await lakeObjects(d);
    const again = await call(`${d.base}/export/lake`, { method: 'POST' });
    expect(again.body.removed).toBe(0);
    expect(await lakeObjects(d)).toEqual(first);

    expect((await call(`${d.base}/run/r1`, { method: 'DELETE' })).status).toBeLessThan(300);
    // Only the last day is rewritten: the deleted record's day stays until its own day is.
    const recent = await call(`${d.base}/export/lake`, { body: { since: '2026-11-30' } });
    expect(recent.status).toBe(200);
    expect(recent.body.removed).toBe(0);
    expect([...(await lakeObjects(d)).keys()].some((k) => k.includes('day=2026-11-28'))).toBe(true);
    const full = await call(`${d.base}/export/lake?since=2026-11-01`, { method: 'POST' });
    // The main table, its tags and its two child tables each lose their 2026-11-28 partition.
    expect(full.body.removed).toBe(4);
    expect([...(await lakeObjects(d)).keys()].some((k) => k.includes('day=2026-11-28'))).toBe(false);
    const days = await readLake(d.dir, spec.table, 'day::VARCHAR AS day, count(*)::INTEGER AS n');
    expect(days.map((r) => String(r.day))).toEqual(['2026-11-29', '2026-11-30']);
  });

  it('refuses a since that is not a calendar day, and fields it does not know', async () => {
    for (const body of [
      { since: '2026-13-01' },
      { since: '2026-02-30' },
      { since: 'yesterday' },
      { since: "2026-11-01' OR 1=1 --" },
      { since: 20261101 },
      { until: '2026-11-01' },
    ]) {
      const res = await call(`${d.base}/export/lake`, { body });
      expect([body, res.status, res.headers.get('content-type')]).toEqual([
        body,
        400,
        'application/problem+json; charset=utf-8',
      ]);
    }
    const res = await call(`${d.base}/export/lake?since=2026-1-1`, { method: 'POST' });
    expect(res.status).toBe(400);
    expect([...(await lakeObjects(d)).keys()]).toEqual([]);
  });
});

/** A test domain composed as main does, on a temp folder, with `extra` settings. */
async function composeDomain(extra: Partial<Parameters<typeof compose>[0]>) {
  const tmp = tempDir('qlab-lake-');
  const composed = await compose(
    {
      domain: 'test',
      dbPath: path.join(tmp.dir, 'test.duckdb'),
      dataDir: tmp.dir,
      queryTimeoutMs: 10_000,
      maxBulkBytes: 1 << 20,
      loadTimeoutMs: 60_000,
      ...extra,
    },
    { logger: silentLogger() },
  );
  return { tmp, ...composed };
}

describe('the lake export to S3', () => {
  let s3: LocalS3;
  beforeAll(async () => {
    s3 = await startLocalS3();
  });
  afterAll(() => s3.close());

  it('puts the same partitions in the bucket', async () => {
    const store = s3.store('lab');
    const { tmp, domain, close } = await composeDomain({ blobStore: store });
    try {
      await domain.writes.loadRecords([sampleRecord('test', 'x1', { started_at: '2026-12-01T10:00:00Z' })]);
      const r = await domain.lake.export();
      expect(r.location).toBe('s3://qlab-test/lab/lake/test');
      const keys: string[] = [];
      for await (const o of store.list('lake/test/')) keys.push(o.key);
      expect(keys).toContain(`lake/test/${spec.table}/day=2026-12-01/data_0.parquet`);
    } finally {
      await close();
      tmp.cleanup();
    }
  });
});

describe('the scheduled lake export', () => {
  it('exports yesterday and today every ANALYTICS_LAKE_EVERY, and stops with the service', async () => {
    const { tmp, domain, close } = await composeDomain({ lakeEveryMs: 50 });
    try {
      const today = new Date().toISOString();
      await domain.writes.loadRecords([
        sampleRecord('test', 'now', { started_at: today }),
        sampleRecord('test', 'old', { started_at: '2020-01-01T00:00:00Z' }),
      ]);
      const { FileBlobStore } = await import('@qlab/blob-store');
      const store = await FileBlobStore.open(tmp.dir);
      const key = `lake/test/${spec.table}/day=${today.slice(0, 10)}/data_0.parquet`;
      for (let i = 0; i < 100 && !(await store.head(key)); i++) await new Promise((r) => setTimeout(r, 50));
      expect(await store.head(key)).toBeDefined();
      // Only the recent days: 2020 waits for an export asked for with its `since`.
      expect(await store.head(`lake/test/${spec.table}/day=2020-01-01/data_0.parquet`)).toBeUndefined();
    } finally {
      await close();
      tmp.cleanup();
    }
  });
});
