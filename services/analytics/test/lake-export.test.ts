import { createHash } from 'node:crypto';
import path from 'node:path';
import { Readable } from 'node:stream';
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
    await duck.close();
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

  it('refuses times that have no YYYY-MM-DD day, in JSON and in bulk, and clears partitions that are not days', async () => {
    const reason = 'a time from year 0001 to 9999 in UTC';
    for (const t of ['9999-12-31T23:59:59-05:00', '0001-01-01T00:00:00+01:00', '0000-06-01T00:00:00Z']) {
      const res = await call(`${d.base}/runs`, { body: [sampleRecord('test', 'x1', { started_at: t })] });
      expect([t, res.status, res.text.includes(reason)]).toEqual([t, 400, true]);
    }
    const edges = ['0001-01-01T00:00:00Z', '9999-12-31T23:59:59.999Z'];
    const ok = await call(`${d.base}/runs`, {
      body: edges.map((t, i) => sampleRecord('test', `edge${i}`, { started_at: t })),
    });
    expect(ok.status).toBe(201);
    const times = [
      'infinity',
      '-infinity',
      '9999-12-31T23:59:59-05:00',
      '10000-01-01T00:00:00Z',
      '0044-03-15 12:00:00 BC',
    ];
    const bulk = await call(`${d.base}/runs/bulk`, {
      raw: [...times, '2026-11-30T09:00:00Z']
        .map((t, i) => JSON.stringify(sampleRecord('test', `bulk${i}`, { started_at: t })))
        .join('\n'),
    });
    expect(bulk.status).toBe(201);
    expect(bulk.body.accepted).toBe(1);
    // DuckDB reads all but the BC one as times (refused by their range); that one it cannot read.
    expect(bulk.body.errors.map((e: { reason: string }) => e.reason)).toEqual([
      ...times.slice(0, 4).map(() => `started_at: ${reason}`),
      'started_at: not a valid timestamptz',
    ]);
    // A partition an older version wrote from such a time goes at the next export, whatever its `since`.
    const { FileBlobStore } = await import('@qlab/blob-store');
    const store = await FileBlobStore.open(d.dir);
    const stale = `lake/test/${spec.table}/day=infinity/data_0.parquet`;
    await store.put(stale, Readable.from([Buffer.from('PAR1')]));
    const res = await call(`${d.base}/export/lake`, { body: { since: '2026-11-30' } });
    expect(res.status).toBe(200);
    expect(res.body.removed).toBe(1);
    expect(await store.head(stale)).toBeUndefined();
    const days = await readLake(d.dir, spec.table, 'day::VARCHAR AS day, count(*)::INTEGER AS n');
    expect(days.map((r) => String(r.day))).toEqual(['2026-11-30', '9999-12-31']);
  });

  it('keeps at most one export waiting: requests meanwhile join it, widened to cover them all', async () => {
    const sinces = ['2026-11-30', '2026-11-29', undefined, '2026-11-28', '2026-11-30', '2026-11-01'];
    const answers = await Promise.all(
      [...sinces, ...sinces].map((since) => call(`${d.base}/export/lake`, { body: since ? { since } : {} })),
    );
    expect(answers.map((a) => a.status)).toEqual(answers.map(() => 200));
    const runs = new Set(answers.map((a) => a.text));
    expect(runs.size).toBeLessThanOrEqual(2);
    // Whichever ran last covered every day (one request asked for all of them).
    const last = answers.map((a) => a.body).find((b) => b.since === null);
    expect(last.tables.find((t: { table: string }) => t.table === spec.table)).toMatchObject({
      days: 3,
      rows: 4,
    });
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

describe('a snapshot read', () => {
  it('sees one committed state in every statement, whatever commits meanwhile', async () => {
    const tmp = tempDir('qlab-snapshot-');
    const db = await DuckDb.open(path.join(tmp.dir, 's.duckdb'), { queryTimeoutMs: 10_000 });
    try {
      await db.exclusive((tx) => tx.run('CREATE TABLE a (n INTEGER); CREATE TABLE b (n INTEGER)'));
      await db.write((tx) => tx.run('INSERT INTO a VALUES (1); INSERT INTO b VALUES (1)'));
      const seen = await db.snapshot(async (tx) => {
        const a = await tx.query<{ n: number }>('SELECT count(*)::INTEGER AS n FROM a');
        // An ingest commits between the export's two tables.
        await db.write((w) => w.run('INSERT INTO a VALUES (2); INSERT INTO b VALUES (2)'));
        const b = await tx.query<{ n: number }>('SELECT count(*)::INTEGER AS n FROM b');
        return [a[0]!.n, b[0]!.n];
      });
      expect(seen).toEqual([1, 1]);
      expect(await db.query('SELECT count(*)::INTEGER AS n FROM b')).toEqual([{ n: 2 }]);
    } finally {
      await db.close();
      tmp.cleanup();
    }
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
