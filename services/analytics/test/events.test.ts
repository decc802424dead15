import { type CloudEvent, type EmbeddedBroker, startEmbeddedBroker, subscribeEvents } from '@qlab/events';
import { waitFor } from '@qlab/testkit';
import { sampleRecord } from './fixtures';
import { call, ndjson, startDomain } from './helpers';

describe('analytics events', () => {
  let broker: EmbeddedBroker;
  beforeAll(async () => {
    broker = await startEmbeddedBroker({ port: 0 });
  });
  afterAll(() => broker.close());

  test('run.ingested per load and batch.completed once, from the DuckDB outbox', async () => {
    const d = await startDomain('benchmark', { mqttUrl: broker.url });
    const got: CloudEvent[] = [];
    const sub = await subscribeEvents({
      mqttUrl: broker.url,
      clientId: `analytics-events-${Date.now()}`,
      clean: true,
      topics: ['qlab/analytics-benchmark/#'],
      onEvent: (e) => {
        got.push(e);
      },
    });
    try {
      await call(`${d.base}/runs`, { body: sampleRecord('benchmark', 'e1') });
      await call(`${d.base}/runs/bulk`, {
        raw: ndjson([{ model: 'a', status: 'completed', batch_id: 'b9' }]),
      });
      await call(`${d.base}/batches`, { body: { batch_id: 'b9', status: 'running' } });
      await call(`${d.base}/batch/b9`, { method: 'PATCH', body: { status: 'completed' } });
      await call(`${d.base}/batch/b9`, { method: 'PATCH', body: { status: 'completed' } });
      await waitFor(() => got.length >= 3, 10_000);
      await new Promise((r) => setTimeout(r, 300));
      expect(got.map((e) => e.type)).toEqual(['run.ingested', 'run.ingested', 'batch.completed']);
      expect(got[0]).toMatchObject({
        source: '/qlab/analytics-benchmark',
        data: { domain: 'benchmark', count: 1, run_ids: ['e1'] },
      });
      expect(got[1]!.data).toMatchObject({ count: 1, batch_ids: ['b9'] });
      expect(got[2]).toMatchObject({ subject: 'b9', data: { batch_id: 'b9', total: 1, succeeded: 1 } });
      const [left] = await d.domain.db.query<{ n: number }>(
        'SELECT count(*)::INTEGER AS n FROM event_outbox',
      );
      expect(left!.n).toBe(0);
    } finally {
      await sub.close();
      await d.cleanup();
    }
  });

  test('a rejected load records no event', async () => {
    const d = await startDomain('test', { mqttUrl: broker.url });
    try {
      await call(`${d.base}/runs`, { body: { model: 'x', status: 'nope' } });
      await call(`${d.base}/runs/bulk?strict=true`, { raw: ndjson([{ model: 'x', status: 'nope' }]) });
      const [left] = await d.domain.db.query<{ n: number }>(
        'SELECT count(*)::INTEGER AS n FROM event_outbox',
      );
      expect(left!.n).toBe(0);
      expect(d.publisher!.stats.published).toBe(0);
    } finally {
      await d.cleanup();
    }
  });
});
