import { silentLogger } from '@qlab/kit';
import { mqttTestUrl, waitFor } from '@qlab/testkit';
import mqtt from 'mqtt';
import { LiveHub } from '../src/sync/hub';
import { relayHub } from '../src/sync/hub-relay';

const mqttUrl = mqttTestUrl('tracker live relay');

(mqttUrl ? describe : describe.skip)('the live relay between tracker replicas', () => {
  it('ignores payloads that are not envelopes, and still relays the next good one', async () => {
    const scope = `relay-test-${process.pid}`;
    const hub = new LiveHub();
    const heard: string[] = [];
    hub.on('dashboard', (t: string) => heard.push(t));
    const relay = relayHub(hub, { mqttUrl: mqttUrl!, scope, logger: silentLogger() });
    const other = await mqtt.connectAsync(mqttUrl!, { clientId: `relay-test-pub-${process.pid}` });
    try {
      const topic = `qlab/tracker-live/${scope}/dashboard`;
      const good = JSON.stringify({
        origin: 'another-replica',
        text: JSON.stringify({ type: 'sync.finished' }),
      });
      // Published until the relay's subscription holds: the good message arrives.
      await waitFor(
        async () => {
          await other.publishAsync(topic, good);
          return heard.length > 0;
        },
        5000,
        100,
      );
      heard.length = 0;
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
        await other.publishAsync(topic, bad);
      const last = JSON.stringify({
        origin: 'another-replica',
        text: JSON.stringify({ type: 'queue.updated', n: 'last' }),
      });
      await other.publishAsync(topic, last);
      await waitFor(() => heard.some((t) => t.includes('"last"')), 5000);
      // Only envelopes got through (the first loop's repeats may still arrive), and this process lives on.
      expect(
        heard.map((t) => JSON.parse(t).type).every((t) => t === 'sync.finished' || t === 'queue.updated'),
      ).toBe(true);
    } finally {
      await other.endAsync(true);
      await relay.close();
    }
  });
});
