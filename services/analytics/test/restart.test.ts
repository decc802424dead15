import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from '@qlab/testkit';
import { loadAnalyticsConfig } from '../src/config';
import { openDomain, prepareDbLocation, tempDirFor } from '../src/open-domain';
import { DuckDb } from '../src/storage/duck';
import { sampleRecord } from './fixtures';
import { call, startDomain } from './helpers';

test('data survives a restart on the same file', async () => {
  const first = await startDomain('test');
  await call(`${first.base}/runs`, { body: sampleRecord('test', 'kept') });
  await first.stop();
  const second = await startDomain('test', { dir: first.dir });
  try {
    const res = await call(`${second.base}/run/kept`);
    expect(res.status).toBe(200);
    expect(res.body.steps).toHaveLength(2);
  } finally {
    await second.cleanup();
  }
});

test('a file of one domain is refused by another', async () => {
  const d = await startDomain('test');
  await d.stop();
  await expect(openDomain({ domain: 'benchmark', dbPath: d.dbPath, queryTimeoutMs: 1000 })).rejects.toThrow(
    /test domain/,
  );
  await d.cleanup();
});

test('a query past its deadline is interrupted with a clear 503 error', async () => {
  const db = await DuckDb.open(':memory:', { queryTimeoutMs: 100, readers: 1 });
  try {
    const started = Date.now();
    await expect(db.query('SELECT count(*) FROM range(1000000000000) a')).rejects.toMatchObject({
      status: 503,
      code: 'QUERY_TIMEOUT',
    });
    expect(Date.now() - started).toBeLessThan(5000);
    // The connection is usable afterwards.
    expect(await db.query('SELECT 42 AS x')).toEqual([{ x: 42 }]);
  } finally {
    await db.close();
  }
});

test('the API answers 401 without the token when one is set', async () => {
  const d = await startDomain('generator', { apiToken: 's3cret' });
  try {
    expect((await call(`${d.base}/tasks`)).status).toBe(401);
    expect((await call(`${d.base}/tasks`, { token: 'wrong' })).status).toBe(401);
    expect((await call(`${d.base}/tasks`, { token: 's3cret' })).status).toBe(200);
    expect((await call(`${d.url}/health`)).status).toBe(200);
    // Seed 003's clients send X-API-Key: the token is checked, not just present.
    const withKey = (key: string) => fetch(`${d.base}/tasks`, { headers: { 'X-API-Key': key } });
    expect((await withKey('s3cret')).status).toBe(200);
    expect((await withKey('your-api-key')).status).toBe(401);
    expect((await withKey('')).status).toBe(401);
  } finally {
    await d.cleanup();
  }
});

describe("seed 003's --db-path, a file the operator names", () => {
  test('keeps the permissions of its folder and never touches a folder of the same name', async () => {
    const tmp = tempDir();
    try {
      const shared = path.join(tmp.dir, 'shared');
      mkdirSync(shared);
      chmodSync(shared, 0o1777);
      // A folder of the user's that the old temp name (<domain>.tmp beside the file) would have wiped.
      mkdirSync(path.join(shared, 'test.tmp'));
      writeFileSync(path.join(shared, 'test.tmp', 'mine.txt'), 'keep me');
      const dbPath = path.join(shared, 'test_db.duckdb');
      prepareDbLocation(dbPath, path.join(tmp.dir, 'data', 'analytics'));
      const d = await openDomain({ domain: 'test', dbPath, queryTimeoutMs: 1000 });
      await d.db.close();
      expect(statSync(shared).mode & 0o7777).toBe(0o1777);
      expect(readFileSync(path.join(shared, 'test.tmp', 'mine.txt'), 'utf8')).toBe('keep me');
      expect(existsSync(path.join(tmp.dir, 'data'))).toBe(false);
      expect(tempDirFor(dbPath, 'test', path.join(tmp.dir, 'data', 'analytics'))).toBe(`${dbPath}.qlab-tmp`);
    } finally {
      tmp.cleanup();
    }
  });

  test('makes its own data folder private, and creates a missing folder as 0700', () => {
    const tmp = tempDir();
    try {
      const dataDir = path.join(tmp.dir, 'analytics');
      mkdirSync(dataDir, { mode: 0o755 });
      chmodSync(dataDir, 0o755);
      prepareDbLocation(path.join(dataDir, 'test.duckdb'), dataDir);
      expect(statSync(dataDir).mode & 0o777).toBe(0o700);
      const fresh = path.join(tmp.dir, 'new', 'dir');
      prepareDbLocation(path.join(fresh, 'x.duckdb'), dataDir);
      expect(statSync(fresh).mode & 0o777).toBe(0o700);
    } finally {
      tmp.cleanup();
    }
  });

  test('refuses a file that is not DuckDB, without fetching an extension', async () => {
    const tmp = tempDir();
    try {
      // SQLite's header: DuckDB would otherwise download its sqlite scanner to read it.
      const file = path.join(tmp.dir, 'seed.db');
      writeFileSync(file, Buffer.concat([Buffer.from('SQLite format 3\0'), Buffer.alloc(4080)]));
      await expect(openDomain({ domain: 'test', dbPath: file, queryTimeoutMs: 1000 })).rejects.toThrow(
        /cannot open .* as a DuckDB database/,
      );
    } finally {
      tmp.cleanup();
    }
  });

  test('takes :memory: as DuckDB does', async () => {
    const c = loadAnalyticsConfig(['--domain', 'test', '--db-path', ':memory:'], {})!;
    expect(c.dbPath).toBe(':memory:');
    const d = await openDomain({ domain: 'test', dbPath: c.dbPath, queryTimeoutMs: 1000 });
    await d.db.close();
    expect(existsSync(':memory:')).toBe(false);
  });
});

test('closing while warm-ups and reads run waits for them, refuses the rest with 503, and does not crash', async () => {
  // Closing a DuckDB connection under a running query crashes the process (a segfault kills
  // this test's worker, which fails it); three rounds, since the timing varies.
  for (let round = 0; round < 3; round++) {
    const d = await openDomain({ domain: 'benchmark', dbPath: ':memory:', queryTimeoutMs: 10_000 });
    await d.writes.warmed();
    await d.db.write((tx) =>
      tx.run(`INSERT INTO benchmark_runs (run_id, model, hardware, status, started_at, latency_ms)
              SELECT 'r' || i, 'm' || (i % 50), 'h' || (i % 7), 'completed',
                     TIMESTAMPTZ '2026-01-01' + to_days((i % 300)::INTEGER), random()
              FROM range(100000) t(i)`),
    );
    // As a load that recomputed every group does, twice: the second follows the first.
    d.writes.warm();
    d.writes.warm();
    const reads = Array.from({ length: 20 }, (_, i) =>
      d.db.query('SELECT count(*) AS n FROM benchmark_runs WHERE model = $1', [`m${i}`]).then(
        () => 'answered',
        (err: { status?: number }) => err.status,
      ),
    );
    await new Promise((resolve) => setTimeout(resolve, 20 * round));
    const closed = d.db.close();
    const after = d.db.query('SELECT 1').catch((err: { status?: number }) => err.status);
    await closed;
    expect(await after).toBe(503);
    for (const r of await Promise.all(reads)) expect(['answered', 503]).toContain(r);
    await d.writes.warmed();
  }
}, 60_000);
