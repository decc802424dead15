import { openDomain } from '../src/open-domain';
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
    db.close();
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
