import Database from 'better-sqlite3';
import type { Job } from '../src/domain/job';
import { type RunningQueue, startQueue } from './helpers';

/** The queue's semantics; run on SQLite and on PostgreSQL. */
export function repositoryContract(engine: string, pgUrl?: string) {
  describe(`job queue on ${engine}`, () => {
    let q: RunningQueue;
    let now = 1_000_000;
    beforeEach(async () => {
      now = 1_000_000;
      q = await startQueue({ pgUrl, now: () => now });
    });
    afterEach(async () => q.close());
    const lease = (j: Job, workerId = 'w1') => ({ workerId, attempt: j.attempt });

    it('stores the seed job model', async () => {
      const [job] = await q.repo.add([
        {
          task_type: 'image_resize',
          params: { width: 800, height: 600 },
          priority: 5,
          created_by: 'user123',
        },
      ]);
      expect(job).toMatchObject({
        task_type: 'image_resize',
        params: { width: 800, height: 600 },
        status: 'queued',
        progress: 0,
        output: null,
        error_message: null,
        created_at: now,
        started_at: null,
        completed_at: null,
        retry_count: 0,
        max_retries: 3,
        created_by: 'user123',
        priority: 5,
      });
      expect(await q.repo.get(job!.job_id)).toEqual(job);
    });

    it('claims highest priority first, then oldest, and only due jobs', async () => {
      await q.repo.add([
        { job_id: 'low-old', task_type: 't', priority: 0 },
        { job_id: 'high', task_type: 't', priority: 10 },
        { job_id: 'low-new', task_type: 't', priority: 0 },
        { job_id: 'later', task_type: 't', priority: 100, run_at: now + 60_000 },
        { job_id: 'other-type', task_type: 'u', priority: 50 },
      ]);
      const order: string[] = [];
      for (let i = 0; i < 4; i++) {
        const j = await q.repo.claim('w1', ['t'], 10_000);
        if (j) order.push(j.job_id);
      }
      expect(order).toEqual(['high', 'low-old', 'low-new']);
      now += 60_000;
      expect((await q.repo.claim('w1', ['t'], 10_000))?.job_id).toBe('later');
      expect((await q.repo.claim('w1', ['t', 'u'], 10_000))?.job_id).toBe('other-type');
    });

    it('claims several at once, best first', async () => {
      await q.repo.add([
        { job_id: 'p0', task_type: 't' },
        { job_id: 'p9', task_type: 't', priority: 9 },
        { job_id: 'p5', task_type: 'u', priority: 5 },
        { job_id: 'p1', task_type: 't', priority: 1 },
      ]);
      const jobs = await q.repo.claimMany('w', ['t', 'u'], 10_000, 3);
      expect(jobs.map((j) => j.job_id)).toEqual(['p9', 'p5', 'p1']);
      expect(jobs.every((j) => j.status === 'processing' && j.attempt === 1)).toBe(true);
      expect((await q.repo.claimMany('w', ['t'], 10_000, 5)).map((j) => j.job_id)).toEqual(['p0']);
    });

    it('never hands one job to two concurrent claimers', async () => {
      await q.repo.add(Array.from({ length: 60 }, (_, i) => ({ task_type: 't', job_id: `j${i}` })));
      const claims = await Promise.all(
        Array.from({ length: 80 }, (_, i) => q.repo.claim(`w${i}`, ['t'], 10_000)),
      );
      const ids = claims.filter(Boolean).map((j) => j!.job_id);
      expect(ids).toHaveLength(60);
      expect(new Set(ids).size).toBe(60);
    });

    it('completes with the right lease only, and reports progress', async () => {
      await q.repo.add([{ job_id: 'a', task_type: 't' }]);
      const j = (await q.repo.claim('w1', ['t'], 10_000))!;
      expect(j).toMatchObject({
        status: 'processing',
        attempt: 1,
        worker_id: 'w1',
        lease_expires_at: now + 10_000,
        started_at: now,
      });
      now += 5_000;
      const beat = await q.repo.heartbeat('a', lease(j), 10_000, 42.4);
      expect(beat).toMatchObject({ progress: 42, lease_expires_at: now + 10_000 });
      await expect(q.repo.complete('a', lease(j, 'intruder'), {})).rejects.toMatchObject({ status: 409 });
      await expect(q.repo.complete('a', { workerId: 'w1', attempt: 2 }, {})).rejects.toMatchObject({
        status: 409,
      });
      const done = await q.repo.complete('a', lease(j), { result: 'success' });
      expect(done).toMatchObject({
        status: 'completed',
        progress: 100,
        output: { result: 'success' },
        completed_at: now,
      });
      await expect(q.repo.complete('a', lease(j), {})).rejects.toMatchObject({ status: 409 });
    });

    it('retries failures with exponential backoff, then keeps the error with its history', async () => {
      await q.repo.add([{ job_id: 'f', task_type: 't', max_retries: 2 }]);
      const delays: number[] = [];
      for (let attempt = 1; attempt <= 3; attempt++) {
        const j = await q.repo.claim('w1', ['t'], 10_000);
        expect(j?.attempt).toBe(attempt);
        const after = await q.repo.fail('f', lease(j!), `boom ${attempt}`);
        if (after.status === 'queued') {
          delays.push(after.run_at - now);
          expect(await q.repo.claim('w1', ['t'], 10_000)).toBeUndefined(); // not due yet
          now = after.run_at;
        } else {
          expect(after).toMatchObject({ status: 'error', error_message: 'boom 3', retry_count: 2 });
          expect(after.errors.map((e) => e.message)).toEqual(['boom 1', 'boom 2', 'boom 3']);
        }
      }
      expect(delays).toEqual([1000, 2000]);
    });

    it('requeues a job whose lease expired, counted as a retry, and fences off the old worker', async () => {
      await q.repo.add([{ job_id: 'l', task_type: 't', max_retries: 1 }]);
      const first = (await q.repo.claim('w1', ['t'], 5_000))!;
      now += 4_000;
      expect(await q.repo.requeueExpired()).toBe(0);
      now += 2_000;
      expect(await q.repo.requeueExpired()).toBe(1);
      const requeued = (await q.repo.get('l'))!;
      expect(requeued).toMatchObject({ status: 'queued', retry_count: 1 });
      expect(requeued.errors[0]?.message).toContain('lease expired');
      now = requeued.run_at;
      const second = (await q.repo.claim('w2', ['t'], 5_000))!;
      expect(second.attempt).toBe(2);
      await expect(q.repo.complete('l', lease(first), {})).rejects.toMatchObject({ status: 409 });
      await q.repo.complete('l', lease(second, 'w2'), {});
      // Out of retries: an expired lease now ends the job in error.
      await q.repo.add([{ job_id: 'm', task_type: 't', max_retries: 0 }]);
      await q.repo.claim('w1', ['t'], 1_000);
      now += 2_000;
      await q.repo.requeueExpired();
      expect((await q.repo.get('m'))?.status).toBe('error');
    });

    // On SQLite another process's heartbeat (its own connection, committing synchronously) can
    // be slipped in between the sweep's read and its write; on PostgreSQL the same race has no
    // deterministic interleaving.
    (pgUrl ? it.skip : it)('leaves its job to a worker that reported while the sweep ran', async () => {
      await q.repo.add([{ job_id: 'hb', task_type: 't' }]);
      const job = (await q.repo.claim('w1', ['t'], 1_000))!;
      now += 2_000;
      let slipped = false;
      const filename = (q.repo.knex.client.config.connection as { filename: string }).filename;
      const other = new Database(filename);
      q.repo.knex.on('query-response', (_rows: unknown, query: { sql: string }) => {
        if (slipped || !/lease_expires_at/.test(query.sql) || !/^select/i.test(query.sql)) return;
        slipped = true;
        other
          .prepare('update jobs set lease_expires_at = ? where job_id = ? and worker_id = ? and attempt = ?')
          .run(now + 10_000, 'hb', job.worker_id, job.attempt);
      });
      const errors: unknown[] = [];
      expect(await q.repo.requeueExpired(100, (_id, err) => errors.push(err))).toBe(0);
      expect(slipped).toBe(true);
      expect(errors).toEqual([]);
      expect(await q.repo.get('hb')).toMatchObject({ status: 'processing', worker_id: 'w1', attempt: 1 });
      other.close();
    });

    it('reports what the lease sweep could not do, and goes on with the other jobs', async () => {
      await q.repo.add([
        { job_id: 'bad', task_type: 't', priority: 9 },
        { job_id: 'good', task_type: 't' },
      ]);
      await q.repo.claim('w1', ['t'], 1_000);
      await q.repo.claim('w2', ['t'], 1_000);
      now += 2_000;
      // A real failure on one row: a trigger refuses to requeue it.
      if (pgUrl) {
        await q.repo.knex.raw(`create function refuse_bad() returns trigger language plpgsql as $$
          begin if new.job_id = 'bad' and new.status = 'queued' then raise exception 'disk on fire'; end if; return new; end $$`);
        await q.repo.knex.raw(
          'create trigger refuse_bad before update on jobs for each row execute function refuse_bad()',
        );
      } else {
        await q.repo.knex.raw(`create trigger refuse_bad before update on jobs
          when new.job_id = 'bad' and new.status = 'queued' begin select raise(abort, 'disk on fire'); end`);
      }
      const errors: Array<[string, string]> = [];
      expect(await q.repo.requeueExpired(100, (id, err) => errors.push([id, (err as Error).message]))).toBe(
        1,
      );
      expect(errors).toHaveLength(1);
      expect(errors[0]![0]).toBe('bad');
      expect(errors[0]![1]).toContain('disk on fire');
      expect((await q.repo.get('good'))?.status).toBe('queued');
      expect((await q.repo.get('bad'))?.status).toBe('processing');
    });

    it('never updates a job that a racing completion or delete just ended', async () => {
      const ids = Array.from({ length: 40 }, (_, i) => `race-${i}`);
      await q.repo.add(ids.map((job_id) => ({ job_id, task_type: 'race' })));
      const claimed = await q.repo.claimMany('w1', ['race'], 30_000, ids.length);
      expect(claimed).toHaveLength(ids.length);
      const outcomes = await Promise.all(
        claimed.map(async (job, i) => {
          const end =
            i % 2 === 0
              ? q.repo.complete(job.job_id, lease(job), { by: 'worker' })
              : q.repo.remove(job.job_id);
          const patch = q.repo.update(job.job_id, { progress: 13, output: { clobbered: true } }).then(
            () => 'updated',
            (err: { status?: number }) => err.status ?? 'crashed',
          );
          await end;
          return patch;
        }),
      );
      // Each PATCH either went first (200) or found the job gone (404) or finished (409); none crashed.
      for (const o of outcomes) expect(['updated', 404, 409]).toContain(o);
      for (const done of claimed.filter((_, i) => i % 2 === 0)) {
        const job = (await q.repo.get(done.job_id))!;
        expect(job.status).toBe('completed');
        expect(job.output).toEqual({ by: 'worker' });
        expect(job.progress).toBe(100);
      }
    });

    it('cancels queued jobs at once and running ones through their worker', async () => {
      await q.repo.add([
        { job_id: 'q', task_type: 't' },
        { job_id: 'r', task_type: 't' },
      ]);
      const running = (await q.repo.claim('w1', ['t'], 10_000))!;
      expect(running.job_id).toBe('q');
      expect(await q.repo.cancel('r')).toMatchObject({ status: 'cancelled' });
      expect(await q.repo.claim('w1', ['t'], 10_000)).toBeUndefined();
      expect(await q.repo.cancel('q')).toMatchObject({ status: 'processing', cancel_requested: true });
      expect((await q.repo.heartbeat('q', lease(running), 10_000)).cancel_requested).toBe(true);
      expect(await q.repo.acknowledgeCancel('q', lease(running))).toMatchObject({ status: 'cancelled' });
      await expect(q.repo.cancel('q')).rejects.toMatchObject({ status: 409 });
      await expect(q.repo.cancel('nope')).rejects.toMatchObject({ status: 404 });
    });

    it('prunes finished jobs older than the retention, and nothing else', async () => {
      await q.repo.add([
        { job_id: 'old', task_type: 't' },
        { job_id: 'new', task_type: 't' },
        { job_id: 'waiting', task_type: 'u' },
      ]);
      for (const id of ['old', 'new']) {
        const j = (await q.repo.claim('w', ['t'], 10_000))!;
        expect(j.job_id).toBe(id);
        await q.repo.complete(id, lease(j, 'w'), {});
        now += 10_000;
      }
      expect(await q.repo.pruneFinished(now - 15_000)).toEqual(['old']);
      expect(await q.repo.get('old')).toBeUndefined();
      expect(await q.repo.get('new')).toBeDefined();
      expect(await q.repo.pruneFinished(now + 1)).toEqual(['new']);
      expect((await q.repo.get('waiting'))?.status).toBe('queued');
    });

    // The hot paths commit what is asked for together in one transaction (group commit): each
    // caller still gets its own answer, after the commit, and only a failing one fails.
    it('claims and completes many jobs asked for at once, each exactly once', async () => {
      await q.repo.add(Array.from({ length: 30 }, (_, i) => ({ job_id: `g${i}`, task_type: 't' })));
      const claimed = await Promise.all(
        Array.from({ length: 30 }, (_, i) => q.repo.claim(`w${i % 3}`, ['t'], 60_000)),
      );
      const ids = claimed.map((j) => j!.job_id);
      expect(new Set(ids).size).toBe(30);
      const done = await Promise.all(
        claimed.map((j, i) => q.repo.complete(j!.job_id, lease(j!, `w${i % 3}`), { n: i })),
      );
      expect(done.map((j) => [j.job_id, j.status, j.output])).toEqual(
        claimed.map((j, i) => [j!.job_id, 'completed', { n: i }]),
      );
      // A second completion of the same attempt is refused, also inside a group.
      const again = await Promise.allSettled(
        claimed.slice(0, 5).map((j, i) => q.repo.complete(j!.job_id, lease(j!, `w${i % 3}`), {})),
      );
      expect(again.every((r) => r.status === 'rejected')).toBe(true);
      const stats = await q.repo.stats();
      expect(stats.by_status.completed).toBe(30);
    });

    it('fails only the completion that cannot be written when others share its commit', async () => {
      await q.repo.add([
        { job_id: 'ok1', task_type: 't' },
        { job_id: 'bad', task_type: 't' },
        { job_id: 'ok2', task_type: 't' },
      ]);
      const jobs = await Promise.all([1, 2, 3].map(() => q.repo.claim('w1', ['t'], 60_000)));
      if (pgUrl) {
        await q.repo.knex.raw(`create function refuse_done() returns trigger language plpgsql as $$
          begin if new.job_id = 'bad' and new.status = 'completed' then raise exception 'disk on fire'; end if; return new; end $$`);
        await q.repo.knex.raw(
          'create trigger refuse_done before update on jobs for each row execute function refuse_done()',
        );
      } else {
        await q.repo.knex.raw(`create trigger refuse_done before update on jobs
          when new.job_id = 'bad' and new.status = 'completed' begin select raise(abort, 'disk on fire'); end`);
      }
      const results = await Promise.allSettled(jobs.map((j) => q.repo.complete(j!.job_id, lease(j!), {})));
      const byId = Object.fromEntries(jobs.map((j, i) => [j!.job_id, results[i]!.status]));
      expect(byId).toEqual({ ok1: 'fulfilled', bad: 'rejected', ok2: 'fulfilled' });
      expect((await q.repo.get('bad'))?.status).toBe('processing');
      expect((await q.repo.get('ok1'))?.status).toBe('completed');
    });

    it('reports stats and deletes', async () => {
      await q.repo.add([{ task_type: 'a' }, { task_type: 'a' }, { task_type: 'b' }]);
      now += 500;
      const j = (await q.repo.claim('w', ['b'], 1000))!;
      const s = await q.repo.stats();
      expect(s).toMatchObject({
        queue_depth: 2,
        oldest_queued_age_ms: 500,
        by_status: { queued: 2, processing: 1 },
        by_task_type: { a: { queued: 2 }, b: { processing: 1 } },
      });
      expect(await q.repo.remove(j.job_id)).toBe(true);
      expect(await q.repo.remove(j.job_id)).toBe(false);
      const page = await q.repo.list({ task_type: 'a', limit: 1, offset: 1 });
      expect(page).toMatchObject({ total: 2 });
      expect(page.items).toHaveLength(1);
    });
  });
}
