import { type CloudEvent, type EmbeddedBroker, startEmbeddedBroker, subscribeEvents } from '@qlab/events';
import { silentLogger } from '@qlab/kit';
import { mqttTestUrl, pgTestUrl, startTcpProxy, waitFor } from '@qlab/testkit';
import { LocalJobSource } from '../src/worker/local-source';
import { WorkerPool } from '../src/worker/pool';
import { startQueue } from './helpers';

function eventsContract(name: string, brokerUrl: () => string, pgUrl?: string) {
  describe(`job events over ${name}`, () => {
    it('arrive in order for each job, also when the broker was unreachable while the jobs ran', async () => {
      const target = new URL(brokerUrl());
      const proxy = await startTcpProxy(target.hostname, Number(target.port));
      const q = await startQueue({ mqttUrl: proxy.url, pgUrl });
      const got: CloudEvent[] = [];
      const sub = await subscribeEvents({
        mqttUrl: brokerUrl(),
        clientId: `jobs-events-${name}-${Date.now()}`,
        clean: true,
        topics: ['qlab/job-worker/#'],
        onEvent: (e) => {
          got.push(e);
        },
      });
      const pool = new WorkerPool({
        source: new LocalJobSource(q.repo, q.workspace, 5000),
        handlers: {
          work: async ({ progress }) => {
            progress(50);
            await new Promise((r) => setTimeout(r, 150)); // one heartbeat carries the progress
            return { ok: true };
          },
        },
        pollIntervalMs: 10,
        logger: silentLogger(),
      });
      await waitFor(() => q.publisher!.connected);
      await proxy.cut();
      await waitFor(() => !q.publisher!.connected);
      const jobs = await q.repo.add(Array.from({ length: 5 }, () => ({ task_type: 'work' })));
      pool.start();
      await waitFor(async () => (await q.repo.stats()).by_status.completed === 5, 10_000);
      await pool.stop();
      expect(got).toHaveLength(0);
      await proxy.restore();
      await waitFor(
        () =>
          jobs.every((j) =>
            got.some((e) => e.type === 'job.completed' && (e.data as { job_id: string }).job_id === j.job_id),
          ),
        15_000,
      );
      await new Promise((r) => setTimeout(r, 200));
      for (const j of jobs) {
        const mine = got.filter((e) => (e.data as { job_id: string }).job_id === j.job_id).map((e) => e.type);
        expect(mine.filter((t) => t !== 'job.progress')).toEqual([
          'job.queued',
          'job.started',
          'job.completed',
        ]);
        expect(mine.indexOf('job.started')).toBeLessThan(mine.lastIndexOf('job.completed'));
      }
      expect(new Set(got.map((e) => e.id)).size).toBe(got.length);
      expect(got.find((e) => e.type === 'job.completed')).toMatchObject({
        source: '/qlab/job-worker',
        data: { status: 'completed', progress: 100, task_type: 'work' },
      });
      await sub.close();
      await q.close();
      await proxy.close();
    });
  });
}

let broker: EmbeddedBroker;
beforeAll(async () => {
  broker = await startEmbeddedBroker({ port: 0 });
});
afterAll(async () => broker.close());
eventsContract('the embedded broker', () => broker.url);

const pgUrl = pgTestUrl('job events');
(pgUrl ? describe : describe.skip)('PostgreSQL queue', () => {
  eventsContract('the embedded broker (PostgreSQL queue)', () => broker.url, pgUrl);
});

const mosquitto = mqttTestUrl('job events');
(mosquitto ? describe : describe.skip)('Mosquitto', () => {
  eventsContract('Mosquitto', () => mosquitto!);
});
