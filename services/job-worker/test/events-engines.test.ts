import { OUTBOX_TABLE } from '@qlab/events';
import { pgTestUrl } from '@qlab/testkit';
import { type JobEventType, jobEvents } from '../src/events';
import { startQueue } from './helpers';

/**
 * The same queue history on SQLite and on PostgreSQL must leave the same events, member by
 * member: the hot paths build them differently (in JS on SQLite, in SQL on PostgreSQL).
 */
async function eventsOf(pgUrl?: string) {
  let now = 1_700_000_000_000;
  const q = await startQueue({ pgUrl, now: () => now, outboxOnly: true });
  try {
    const r = q.repo;
    await r.add([{ job_id: 'a', task_type: 't', params: { n: 1 } }]);
    now += 1;
    await r.add([{ job_id: 'b', task_type: 't', max_retries: 0 }]);
    now += 1;
    const a = (await r.claim('w1', ['t'], 30_000))!;
    const lease = { workerId: 'w1', attempt: a.attempt };
    await r.heartbeat('a', lease, 30_000, 40);
    await r.heartbeat('a', lease, 30_000, 40); // unchanged progress: no event
    await r.heartbeat('a', lease, 30_000); // no progress: no event
    await r.update('a', { progress: 55 }, lease);
    await r.update('a', { output: { partial: true } }, lease);
    // A PATCH may clear the output again (output: null), and that is an event too.
    await r.update('a', { output: null }, lease);
    now += 1;
    await r.complete('a', lease, { x: 1, nested: { y: [1, 2] }, s: 'é' });
    const [b] = await r.claimMany('w2', ['t'], 30_000, 5);
    await r.fail('b', { workerId: 'w2', attempt: b!.attempt }, 'boom');
    await r.add([{ job_id: 'c', task_type: 'u' }]);
    await r.cancel('c');
    await r.add([{ job_id: 'd', task_type: 'v', max_retries: 1 }]);
    const d = (await r.claim('w3', ['v'], 30_000))!;
    await r.fail('d', { workerId: 'w3', attempt: d.attempt }, 'once');
    const rows = (await q
      .knex(OUTBOX_TABLE)
      .orderBy('seq')
      .select('topic', 'payload', 'created_at', 'event_id')) as {
      topic: string;
      payload: string;
      created_at: number | string;
      event_id: string;
    }[];
    return rows.map((row) => {
      const event = JSON.parse(row.payload) as Record<string, unknown>;
      expect(event.id).toBe(row.event_id);
      expect(event.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(new Date(event.time as string).toISOString()).toBe(event.time);
      // Stamped with the queue's clock on every path, as the rows' own times are.
      expect(Number(row.created_at)).toBe(Date.parse(event.time as string));
      // Every event, whichever path wrote it (knex, SQLite's hot path, PostgreSQL's SQL), is one
      // the catalogue declares, with data matching its schema.
      expect(() => jobEvents.check(String(event.type), event.data)).not.toThrow();
      expect(row.topic).toBe(jobEvents.topic(event.type as JobEventType));
      const { id: _id, ...rest } = event; // fresh on each engine
      return { topic: row.topic, event: rest };
    });
  } finally {
    await q.close();
  }
}

const pgUrl = pgTestUrl('job events on both engines');
(pgUrl ? it : it.skip)('SQLite and PostgreSQL record the same job events', async () => {
  const sqlite = await eventsOf();
  const pg = await eventsOf(pgUrl);
  expect(sqlite.map((e) => e.event.type)).toEqual([
    'job.queued',
    'job.queued',
    'job.started',
    'job.progress',
    'job.progress',
    'job.updated',
    'job.updated',
    'job.completed',
    'job.started',
    'job.failed',
    'job.queued',
    'job.cancelled',
    'job.queued',
    'job.started',
    'job.retrying',
  ]);
  expect(pg).toHaveLength(sqlite.length);
  for (let i = 0; i < sqlite.length; i++) expect(pg[i]).toEqual(sqlite[i]);
});
