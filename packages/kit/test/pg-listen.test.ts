import { pgTestUrl, waitFor } from '@qlab/testkit';
import pg from 'pg';
import { listenPg, silentLogger } from '../src';

const pgUrl = pgTestUrl('kit');
if (!pgUrl) console.log('listenPg test skipped: set QLAB_TEST_PG_URL to run it against PostgreSQL');

(pgUrl ? describe : describe.skip)('listenPg', () => {
  let admin: pg.Client;
  beforeAll(async () => {
    admin = new pg.Client({ connectionString: pgUrl });
    await admin.connect();
  });
  afterAll(() => admin.end());

  it('delivers committed notifications, none from a rolled-back transaction, and comes back after its connection is killed', async () => {
    const channel = `qlab_test_${process.pid}`;
    const got: string[] = [];
    const gaps: boolean[] = [];
    const listener = listenPg({
      connectionString: pgUrl!,
      channel,
      onNotify: (p) => got.push(p),
      onGap: (listening) => gaps.push(listening),
      logger: silentLogger(),
      heartbeatMs: 50,
    });
    try {
      await waitFor(() => listener.freshWithin(1000));
      expect(gaps).toEqual([true]);
      await admin.query('begin');
      await admin.query('select pg_notify($1, $2)', [channel, 'rolled back']);
      await admin.query('rollback');
      await admin.query('select pg_notify($1, $2)', [channel, 'key-1']);
      await admin.query('select pg_notify($1, $2)', ['another_channel', 'x']);
      await waitFor(() => got.length === 1);
      expect(got).toEqual(['key-1']);

      // The connection dies: the gap is reported, freshness ends, and it listens again.
      const killed = await admin.query(
        'select pg_terminate_backend(pid) from pg_stat_activity where application_name = $1',
        [`qlab-listen-${channel}`],
      );
      expect(killed.rowCount).toBe(1);
      await waitFor(() => gaps.includes(false));
      await waitFor(() => gaps.length >= 3 && gaps[gaps.length - 1] === true, 5000);
      await waitFor(() => listener.freshWithin(1000));
      await admin.query('select pg_notify($1, $2)', [channel, 'key-2']);
      await waitFor(() => got.length === 2);
      expect(got).toEqual(['key-1', 'key-2']);
    } finally {
      await listener.close();
    }
    expect(listener.freshWithin(1000)).toBe(false);
  });

  it('is not fresh while PostgreSQL cannot be reached, and keeps trying without throwing', async () => {
    const gaps: boolean[] = [];
    const listener = listenPg({
      connectionString: 'postgres://nobody@127.0.0.1:1/none',
      channel: 'x',
      onNotify: () => undefined,
      onGap: (l) => gaps.push(l),
      logger: silentLogger(),
    });
    await waitFor(() => gaps.length >= 2);
    expect(gaps.every((g) => g === false)).toBe(true);
    expect(listener.freshWithin(60_000)).toBe(false);
    await listener.close();
  });
});
