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
        await new Promise((r) => setTimeout(r, 200));
        expect(got.map((e) => (e.data as { i: number }).i)).toEqual([...Array(200).keys()]);
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
      await new Promise((r) => setTimeout(r, 300));
      expect(got).toHaveLength(20);
      expect(Number((await db.knex(OUTBOX_TABLE).count({ n: '*' }))[0]!.n)).toBe(30);

      await proxy.restore();
      await waitFor(() => got.length >= 50, 15_000);
      await new Promise((r) => setTimeout(r, 300));
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
      await waitFor(() => got.length === 5, 10_000);
      await sub.close();
      // Leave no session behind on a shared broker.
      const cleanup = await mqtt.connectAsync(brokerUrl(), { clientId, clean: true });
      await cleanup.endAsync();
      await raw.endAsync();
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
