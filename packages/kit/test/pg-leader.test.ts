import { pgTestUrl, waitFor } from '@qlab/testkit';
import pg from 'pg';
import { lockIdOf, PgLeadership, silentLogger } from '../src';

const pgUrl = pgTestUrl('kit leadership');
if (!pgUrl) console.log('PgLeadership test skipped: set QLAB_TEST_PG_URL to run it against PostgreSQL');

(pgUrl ? describe : describe.skip)('PgLeadership', () => {
  // A namespace of this run's own: parallel runs never contend for the same locks.
  const namespace = (process.pid * 7919) | 0;
  const replicas: PgLeadership[] = [];
  afterAll(async () => {
    for (const r of replicas) await r.stop();
  });

  function replica(app: string, log: string[]) {
    const r = new PgLeadership({
      connectionString: pgUrl!,
      namespace,
      names: ['ibm', 'ionq'],
      onElected: (n) => log.push(`+${n}`),
      onDeposed: (n) => log.push(`-${n}`),
      logger: silentLogger(),
      campaignMs: 100,
      heartbeatMs: 50,
      applicationName: app,
    });
    replicas.push(r);
    return r;
  }

  it('elects one leader per name, hands over when it stops, and steps down when its connection dies', async () => {
    const a: string[] = [];
    const b: string[] = [];
    const ra = replica(`qlab-test-a-${process.pid}`, a);
    ra.start();
    await waitFor(() => a.length === 2);
    const rb = replica(`qlab-test-b-${process.pid}`, b);
    rb.start();
    await new Promise((r) => setTimeout(r, 400));
    expect(a.sort()).toEqual(['+ibm', '+ionq']);
    expect(b).toEqual([]);

    // The leader goes: the other takes both within a few campaign periods.
    const t0 = Date.now();
    await ra.stop();
    expect(a.slice(2).sort()).toEqual(['-ibm', '-ionq']);
    await waitFor(() => b.length === 2, 3000);
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(rb.leading().sort()).toEqual(['ibm', 'ionq']);

    // Its session is killed: it is told at once, campaigns again, and wins (no one else runs).
    const admin = new pg.Client({ connectionString: pgUrl });
    await admin.connect();
    try {
      await admin.query(
        'select pg_terminate_backend(pid) from pg_stat_activity where application_name = $1',
        [`qlab-test-b-${process.pid}`],
      );
      await waitFor(() => b.includes('-ibm') && b.includes('-ionq'));
      await waitFor(() => b.filter((x) => x.startsWith('+')).length === 4, 3000);
      // Exactly one holder per lock, seen from PostgreSQL.
      const held = await admin.query(
        `select objid from pg_locks where locktype = 'advisory' and classid = $1::oid and granted`,
        [namespace >>> 0],
      );
      expect(held.rows.map((r) => Number(r.objid)).sort()).toEqual(
        [lockIdOf('ibm') >>> 0, lockIdOf('ionq') >>> 0].sort(),
      );
    } finally {
      await admin.end();
    }
  });

  it('keeps trying, without throwing, while PostgreSQL cannot be reached', async () => {
    const log: string[] = [];
    const r = new PgLeadership({
      connectionString: 'postgres://nobody@127.0.0.1:1/none',
      namespace,
      names: ['x'],
      onElected: (n) => log.push(n),
      onDeposed: (n) => log.push(n),
      logger: silentLogger(),
      campaignMs: 50,
    });
    r.start();
    await new Promise((res) => setTimeout(res, 300));
    await r.stop();
    expect(log).toEqual([]);
    expect(r.leading()).toEqual([]);
  });

  it('gives every name an int4 lock id', () => {
    for (const n of ['ibm', 'ionq', '', 'é'.repeat(300)]) {
      const id = lockIdOf(n);
      expect(Number.isInteger(id) && id >= -(2 ** 31) && id < 2 ** 31).toBe(true);
    }
    expect(lockIdOf('ibm')).not.toBe(lockIdOf('ionq'));
  });
});
