import { silentLogger } from '@qlab/kit';
import { mqttTestUrl, waitFor } from '@qlab/testkit';
import mqtt from 'mqtt';
import { LiveHub } from '../src/sync/hub';
import { relayHub, sealEnvelope } from '../src/sync/hub-relay';

const mqttUrl = mqttTestUrl('tracker live relay');

/**
 * The relay between tracker replicas, attacked from the broker: anyone who can publish there
 * must not reach the replicas' sockets (nor crash them), only a replica holding the secret.
 */
(mqttUrl ? describe : describe.skip)('the live relay between tracker replicas', () => {
  const secret = 'relay-test-secret-0123456789abcdef';
  let n = 0;
  async function relayed() {
    const scope = `relay-test-${process.pid}-${n++}`;
    const hub = new LiveHub();
    const heard: string[] = [];
    hub.on('dashboard', (t: string) => heard.push(t));
    const relay = relayHub(hub, { mqttUrl: mqttUrl!, scope, secret, logger: silentLogger() });
    const other = await mqtt.connectAsync(mqttUrl!, { clientId: `relay-test-pub-${process.pid}-${n}` });
    const topic = `qlab/tracker-live/${scope}/dashboard`;
    const sealed = (text: string, at = Date.now(), key = secret) =>
      JSON.stringify(sealEnvelope(key, 'dashboard', { origin: 'another-replica', at, text }));
    // Published until the relay's subscription holds; its repeats are replays, so heard once.
    const first = sealed(JSON.stringify({ type: 'sync.finished', n: 'first' }));
    await waitFor(
      async () => {
        await other.publishAsync(topic, first);
        return heard.length > 0;
      },
      5000,
      100,
    );
    heard.length = 0;
    return {
      heard,
      sealed,
      publish: (p: string) => other.publishAsync(topic, p),
      /** Sends a good message last: once it arrives, everything before it has been handled. */
      async settle() {
        await other.publishAsync(topic, sealed(JSON.stringify({ type: 'queue.updated', n: 'last' })));
        await waitFor(() => heard.some((t) => t.includes('"last"')), 5000);
      },
      async close() {
        await other.endAsync(true);
        await relay.close();
      },
    };
  }

  it('drops payloads that are not envelopes, and still relays the next good one', async () => {
    const r = await relayed();
    try {
      for (const bad of [
        'null',
        '7',
        '"text"',
        '[]',
        '{"origin":5}',
        '{"text":3}',
        'not json',
        '\u00ff\u00fe',
      ])
        await r.publish(bad);
      await r.settle();
      expect(r.heard.map((t) => JSON.parse(t).n)).toEqual(['last']);
    } finally {
      await r.close();
    }
  });

  it('drops unsigned, forged, stale and replayed envelopes', async () => {
    const r = await relayed();
    try {
      const fake = JSON.stringify({ type: 'sync.finished', n: 'fake' });
      const good = r.sealed(JSON.stringify({ type: 'sync.finished', n: 'once' }));
      const forged = JSON.parse(r.sealed(fake));
      for (const bad of [
        JSON.stringify({ origin: 'x', text: fake }),
        JSON.stringify({ origin: 'x', at: Date.now(), text: fake, mac: '' }),
        r.sealed(fake, Date.now(), 'a-guessed-secret'),
        JSON.stringify({ ...forged, text: JSON.stringify({ type: 'sync.finished', n: 'altered' }) }),
        JSON.stringify({ ...forged, at: forged.at + 1 }),
        r.sealed(fake, Date.now() - 60_000),
        r.sealed(fake, Date.now() + 60_000),
        good,
        good,
      ])
        await r.publish(bad);
      await r.settle();
      expect(r.heard.map((t) => JSON.parse(t).n)).toEqual(['once', 'last']);
    } finally {
      await r.close();
    }
  });
});
