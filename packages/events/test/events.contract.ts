import { randomUUID } from 'node:crypto';
import type { Knex } from '@qlab/kit';
import { startTcpProxy, waitFor } from '@qlab/testkit';
import mqtt from 'mqtt';
import { type CloudEvent, createEvent, OUTBOX_TABLE, Outbox, OutboxPublisher, subscribeEvents } from '../src';
import { outboxDb } from './helpers';

/** The publisher/subscriber contract, run against the embedded broker and against Mosquitto. */
export function eventsContract(brokerName: string, brokerUrl: () => string, pgUrl?: string) {
  describe(`events over ${brokerName}, outbox on ${pgUrl ? 'PostgreSQL' : 'SQLite'}`, () => {
    let db: { knex: Knex; cleanup(): Promise<void> };
    const run = randomUUID().slice(0, 8);
    beforeEach(async () => {
      db = await outboxDb(pgUrl);
    });
    afterEach(async () => db.cleanup());

    async function write(outbox: Outbox, n: number, from = 0) {
      for (let i = from; i < from + n; i++) {
        await db.knex.transaction((trx) => outbox.record(trx, 'thing.happened', `things/${i}`, { i, run }));
      }
      outbox.written();
    }

    it('publishes outbox events once each, in order, and empties the outbox', async () => {
      const got: CloudEvent[] = [];
      const sub = await subscribeEvents({
        mqttUrl: brokerUrl(),
        clientId: `sub-order-${run}`,
        clean: true,
        topics: [`qlab/test-${run}/#`],
        onEvent: (e) => {
          got.push(e);
        },
      });
      const pub = new OutboxPublisher({
        knex: db.knex,
        mqttUrl: brokerUrl(),
        clientId: `pub-${run}`,
        pollMs: 50,
      });
      const outbox = new Outbox(`test-${run}`, () => pub.kick());
      pub.start();
      await write(outbox, 300);
      await waitFor(() => got.length >= 300, 10_000);
      expect(got.map((e) => (e.data as { i: number }).i)).toEqual([...Array(300).keys()]);
      expect(got[0]).toMatchObject({
        specversion: '1.0',
        source: `/qlab/test-${run}`,
        type: 'thing.happened',
      });
      await waitFor(async () => Number((await db.knex(OUTBOX_TABLE).count({ n: '*' }))[0]!.n) === 0);
      await pub.stop();
      await sub.close();
    });

    it("sends the last minute's events again after a reconnect, for a broker that lost them", async () => {
      const url = new URL(brokerUrl());
      const proxy = await startTcpProxy(url.hostname, Number(url.port));
      const pub = new OutboxPublisher({
        knex: db.knex,
        mqttUrl: proxy.url,
        clientId: `pub-replay-${run}`,
        pollMs: 20,
        replayDelayMs: 100,
      });
      const outbox = new Outbox(`replay-${run}`, () => pub.kick());
      pub.start();
      await waitFor(() => pub.connected, 5000);
      await write(outbox, 3);
      await waitFor(() => pub.stats.published === 3, 5000);
      // A subscriber that never got them, as after a broker that died with them undelivered.
      const got: CloudEvent[] = [];
      const sub = await subscribeEvents({
        mqttUrl: brokerUrl(),
        clientId: `sub-replay-${run}`,
        clean: true,
        topics: [`qlab/replay-${run}/#`],
        onEvent: (e) => {
          got.push(e);
        },
      });
      await proxy.cut();
      await proxy.restore();
      // The replay counter moves when the broker acknowledges, which can come after delivery.
      await waitFor(() => got.length === 3 && pub.stats.replayed === 3, 10_000);
      expect(got.map((e) => (e.data as { i: number }).i)).toEqual([0, 1, 2]);
      expect(pub.stats.replayed).toBe(3);
      await pub.stop();
      await sub.close();
      await proxy.close();
    });

    // PostgreSQL only: several processes may share one database there (SQLite has one owner).
    if (pgUrl)
      it('lets only one of two publishers on one database drain at a time', async () => {
        const got: CloudEvent[] = [];
        const sub = await subscribeEvents({
          mqttUrl: brokerUrl(),
          clientId: `sub-two-${run}`,
          clean: true,
          topics: [`qlab/two-${run}/#`],
          onEvent: (e) => {
            got.push(e);
          },
        });
        const pubs = [1, 2].map(
          (n) =>
            new OutboxPublisher({
              knex: db.knex,
              mqttUrl: brokerUrl(),
              clientId: `pub-two-${n}-${run}`,
              pollMs: 10,
              batchSize: 7,
            }),
        );
        for (const p of pubs) p.start();
        const outbox = new Outbox(`two-${run}`, () => {
          for (const p of pubs) p.kick();
        });
        await write(outbox, 200);
        await waitFor(() => got.length >= 200, 15_000);
        // A last event through the same path: once it is in, anything sent twice before it is too.
        await write(outbox, 1, 200);
        await waitFor(() => got.some((e) => (e.data as { i: number }).i === 200), 15_000);
        expect(got.map((e) => (e.data as { i: number }).i)).toEqual([...Array(201).keys()]);
        expect(sub.duplicates).toBe(0);
        for (const p of pubs) await p.stop();
        await sub.close();
      });

    it('keeps events while the broker is unreachable and delivers each once afterwards', async () => {
      const target = new URL(brokerUrl());
      const proxy = await startTcpProxy(target.hostname, Number(target.port));
      const got: CloudEvent[] = [];
      const sub = await subscribeEvents({
        mqttUrl: brokerUrl(),
        clientId: `sub-outage-${run}`,
        clean: true,
        topics: [`qlab/outage-${run}/#`],
        onEvent: (e) => {
          got.push(e);
        },
      });
      const pub = new OutboxPublisher({
        knex: db.knex,
        mqttUrl: proxy.url,
        clientId: `pub-outage-${run}`,
        pollMs: 50,
        publishTimeoutMs: 1000,
      });
      const outbox = new Outbox(`outage-${run}`, () => pub.kick());
      pub.start();
      await write(outbox, 20);
      await waitFor(() => got.length === 20, 10_000);

      await proxy.cut();
      await waitFor(() => !pub.connected);
      await write(outbox, 30, 20);
      // Disconnected, the publisher does not try (publisher.ts run loop): the events wait in the
      // outbox, committed, and nothing new can arrive.
      expect(got).toHaveLength(20);
      expect(Number((await db.knex(OUTBOX_TABLE).count({ n: '*' }))[0]!.n)).toBe(30);

      await proxy.restore();
      await waitFor(() => got.length >= 50, 15_000);
      // Sent and acknowledged, every one: nothing is left that could still come as a new event.
      await waitFor(async () => Number((await db.knex(OUTBOX_TABLE).count({ n: '*' }))[0]!.n) === 0, 10_000);
      const ids = got.map((e) => (e.data as { i: number }).i);
      expect(ids).toEqual([...Array(50).keys()]);
      await pub.stop();
      await sub.close();
      await proxy.close();
    });

    it('delivers what was published while a persistent subscriber was away', async () => {
      const clientId = `sub-persist-${run}`;
      const topic = `qlab/persist-${run}/thing.happened`;
      const got: CloudEvent[] = [];
      const onEvent = (e: CloudEvent) => {
        got.push(e);
      };
      let sub = await subscribeEvents({ mqttUrl: brokerUrl(), clientId, topics: [topic], onEvent });
      await sub.close();
      const raw = await mqtt.connectAsync(brokerUrl(), { clientId: `raw-${run}` });
      for (let i = 0; i < 5; i++) {
        await raw.publishAsync(
          topic,
          JSON.stringify(createEvent(`persist-${run}`, 'thing.happened', 's', { i })),
          {
            qos: 1,
          },
        );
      }
      sub = await subscribeEvents({ mqttUrl: brokerUrl(), clientId, topics: [topic], onEvent });
      await waitFor(() => got.length >= 5, 10_000);
      expect(got.map((e) => (e.data as { i: number }).i)).toEqual([0, 1, 2, 3, 4]);
      await sub.close();
      // Leave no session behind on a shared broker.
      const cleanup = await mqtt.connectAsync(brokerUrl(), { clientId, clean: true });
      await cleanup.endAsync();
      await raw.endAsync();
    });

    it('retries a failing handler and keeps delivering the messages behind it', async () => {
      const topic = `qlab/retry-${run}/thing.happened`;
      const tries = new Map<string, number>();
      const handled: string[] = [];
      const sub = await subscribeEvents({
        mqttUrl: brokerUrl(),
        clientId: `sub-retry-${run}`,
        clean: true,
        topics: [topic],
        retryDelayMs: 10,
        onEvent: (e) => {
          const n = (tries.get(e.subject ?? '') ?? 0) + 1;
          tries.set(e.subject ?? '', n);
          if (e.subject === 'flaky' && n < 3) throw new Error(`try ${n} fails`);
          handled.push(e.subject ?? '');
        },
      });
      const raw = await mqtt.connectAsync(brokerUrl(), { clientId: `raw-retry-${run}` });
      await raw.publishAsync(topic, JSON.stringify(createEvent('x', 'thing.happened', 'flaky', {})), {
        qos: 1,
      });
      await raw.publishAsync(topic, JSON.stringify(createEvent('x', 'thing.happened', 'next', {})), {
        qos: 1,
      });
      await waitFor(() => handled.length === 2, 10_000);
      expect(handled).toEqual(['flaky', 'next']);
      expect(tries.get('flaky')).toBe(3);
      expect(sub.deadLettered).toBe(0);
      await raw.endAsync();
      await sub.close();
    });

    it('dead-letters an event whose handler keeps failing, then goes on', async () => {
      const topic = `qlab/dlq-${run}/thing.happened`;
      const deadLetterTopic = `qlab-dead-letter/test-${run}`;
      const watcher = await mqtt.connectAsync(brokerUrl(), { clientId: `dlq-watch-${run}` });
      const dead: Array<{ topic: string; error: string; attempts: number; event: CloudEvent }> = [];
      watcher.on('message', (_t, payload) => dead.push(JSON.parse(payload.toString())));
      await watcher.subscribeAsync(deadLetterTopic, { qos: 1 });
      const handled: string[] = [];
      const sub = await subscribeEvents({
        mqttUrl: brokerUrl(),
        clientId: `sub-dlq-${run}`,
        clean: true,
        topics: [topic],
        maxAttempts: 2,
        retryDelayMs: 10,
        deadLetterTopic,
        onEvent: (e) => {
          if (e.subject === 'poison') throw new Error('cannot handle poison');
          handled.push(e.subject ?? '');
        },
      });
      const raw = await mqtt.connectAsync(brokerUrl(), { clientId: `raw-dlq-${run}` });
      const poison = createEvent('x', 'thing.happened', 'poison', {});
      await raw.publishAsync(topic, JSON.stringify(poison), { qos: 1 });
      await raw.publishAsync(topic, JSON.stringify(createEvent('x', 'thing.happened', 'fine', {})), {
        qos: 1,
      });
      await waitFor(() => handled.length === 1 && dead.length === 1, 10_000);
      expect(handled).toEqual(['fine']);
      expect(dead[0]).toMatchObject({
        topic,
        error: 'cannot handle poison',
        attempts: 2,
        event: { id: poison.id },
      });
      expect(sub.deadLettered).toBe(1);
      // Given up on once: a repeat of the same id is a duplicate, not a second dead letter.
      await raw.publishAsync(topic, JSON.stringify(poison), { qos: 1 });
      await waitFor(() => sub.duplicates === 1, 10_000);
      expect(dead).toHaveLength(1);
      await Promise.all([raw.endAsync(), watcher.endAsync(), sub.close()]);
    });

    it('handles a redelivery after a reconnect when the first delivery failed', async () => {
      const clientId = `sub-redeliver-${run}`;
      const topic = `qlab/redeliver-${run}/thing.happened`;
      let calls = 0;
      const handled: string[] = [];
      const sub = await subscribeEvents({
        mqttUrl: brokerUrl(),
        clientId,
        topics: [topic],
        maxAttempts: 1,
        deadLetterTopic: `qlab-dead-letter/unused-${run}`,
        onEvent: async (e) => {
          calls++;
          if (calls === 1) {
            // The connection drops while the handler runs; then the handler fails.
            sub.client.stream.destroy();
            throw new Error('lost mid-handler');
          }
          handled.push(e.id);
        },
      });
      const raw = await mqtt.connectAsync(brokerUrl(), { clientId: `raw-redeliver-${run}` });
      const event = createEvent('x', 'thing.happened', 'once', {});
      await raw.publishAsync(topic, JSON.stringify(event), { qos: 1 });
      await waitFor(() => handled.length === 1, 15_000);
      expect(handled).toEqual([event.id]);
      await Promise.all([raw.endAsync(), sub.close()]);
      const cleanup = await mqtt.connectAsync(brokerUrl(), { clientId, clean: true });
      await cleanup.endAsync();
    });

    it("never runs one event's handler twice at once, when the broker redelivers it mid-handler", async () => {
      const clientId = `sub-inflight-${run}`;
      const topic = `qlab/inflight-${run}/thing.happened`;
      const url = new URL(brokerUrl());
      const proxy = await startTcpProxy(url.hostname, Number(url.port));
      let running = 0;
      let most = 0;
      let calls = 0;
      const sub = await subscribeEvents({
        mqttUrl: proxy.url,
        clientId,
        topics: [topic],
        onEvent: async () => {
          calls++;
          running++;
          most = Math.max(most, running);
          // The connection drops while this runs; the broker redelivers on the new one.
          if (calls === 1) await proxy.cut().then(() => proxy.restore());
          await new Promise((r) => setTimeout(r, 2500));
          running--;
        },
      });
      const raw = await mqtt.connectAsync(brokerUrl(), { clientId: `raw-inflight-${run}` });
      await raw.publishAsync(topic, JSON.stringify(createEvent('x', 'thing.happened', 's', {})), { qos: 1 });
      // The redelivery waited for the first attempt, then was dropped as the duplicate it is.
      await waitFor(() => calls >= 1 && running === 0 && sub.duplicates >= 1, 15_000);
      expect(most).toBe(1);
      expect(calls).toBe(1);
      await Promise.all([raw.endAsync(), sub.close()]);
      await proxy.close();
      const cleanup = await mqtt.connectAsync(brokerUrl(), { clientId, clean: true });
      await cleanup.endAsync();
    }, 30_000);

    it('counts a handler that never finishes as failed, and goes on', async () => {
      const topic = `qlab/hang-${run}/thing.happened`;
      const handled: string[] = [];
      const sub = await subscribeEvents({
        mqttUrl: brokerUrl(),
        clientId: `sub-hang-${run}`,
        clean: true,
        topics: [topic],
        maxAttempts: 1,
        handlerTimeoutMs: 200,
        deadLetterTopic: `qlab-dead-letter/hang-${run}`,
        onEvent: (e) => {
          if (e.subject === 'hangs') return new Promise<void>(() => undefined);
          handled.push(e.subject ?? '');
        },
      });
      const raw = await mqtt.connectAsync(brokerUrl(), { clientId: `raw-hang-${run}` });
      await raw.publishAsync(topic, JSON.stringify(createEvent('x', 'thing.happened', 'hangs', {})), {
        qos: 1,
      });
      await raw.publishAsync(topic, JSON.stringify(createEvent('x', 'thing.happened', 'after', {})), {
        qos: 1,
      });
      await waitFor(() => handled.length === 1, 10_000);
      expect(sub.deadLettered).toBe(1);
      await Promise.all([raw.endAsync(), sub.close()]);
    });

    it('drops duplicates by id and ignores messages that are not CloudEvents', async () => {
      const topic = `qlab/dedupe-${run}/thing.happened`;
      const got: CloudEvent[] = [];
      const sub = await subscribeEvents({
        mqttUrl: brokerUrl(),
        clientId: `sub-dedupe-${run}`,
        clean: true,
        topics: [topic],
        onEvent: (e) => {
          got.push(e);
        },
      });
      const raw = await mqtt.connectAsync(brokerUrl(), { clientId: `raw-dedupe-${run}` });
      const event = JSON.stringify(createEvent('x', 'thing.happened', 's', {}));
      await raw.publishAsync(topic, event, { qos: 1 });
      await raw.publishAsync(topic, 'not json', { qos: 1 });
      await raw.publishAsync(topic, JSON.stringify({ hello: 'world' }), { qos: 1 });
      await raw.publishAsync(topic, event, { qos: 1 });
      const last = JSON.stringify(createEvent('x', 'thing.happened', 'last', {}));
      await raw.publishAsync(topic, last, { qos: 1 });
      await waitFor(() => got.length === 2);
      expect(got.map((e) => e.subject)).toEqual(['s', 'last']);
      expect(sub.duplicates).toBe(1);
      await raw.endAsync();
      await sub.close();
    });
  });
}
