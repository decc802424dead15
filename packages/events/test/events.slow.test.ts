import { mqttTestUrl, pgTestUrl } from '@qlab/testkit';
import { type EmbeddedBroker, startEmbeddedBroker, topicFor } from '../src';
import { eventsContract } from './events.contract';

let broker: EmbeddedBroker;
beforeAll(async () => {
  broker = await startEmbeddedBroker({ port: 0 });
});
afterAll(async () => broker.close());

eventsContract('the embedded broker', () => broker.url);

const pgUrl = pgTestUrl('events outbox');
(pgUrl ? describe : describe.skip)('PostgreSQL outbox', () => {
  eventsContract('the embedded broker', () => broker.url, pgUrl);
});

const mosquitto = mqttTestUrl('events');
(mosquitto ? describe : describe.skip)('Mosquitto', () => {
  eventsContract('Mosquitto', () => mosquitto!);
});

describe('topicFor', () => {
  it('builds qlab/<service>/<type> and refuses wildcards', () => {
    expect(topicFor('job-worker', 'job.completed')).toBe('qlab/job-worker/job.completed');
    expect(() => topicFor('a/#', 'x')).toThrow();
    expect(() => topicFor('a', '+')).toThrow();
  });
});
