import path from 'node:path';
import {
  type CloudEvent,
  type EmbeddedBroker,
  type Subscription,
  startEmbeddedBroker,
  subscribeEvents,
} from '@qlab/events';
import { tempDir, waitFor } from '@qlab/testkit';
import request from 'supertest';
import { countRows, makeZip, type RunningStore, startStore } from './helpers';

describe('calibration store events', () => {
  let broker: EmbeddedBroker;
  let store: RunningStore;
  let sub: Subscription;
  const got: CloudEvent[] = [];
  const files = tempDir();

  beforeAll(async () => {
    broker = await startEmbeddedBroker({ port: 0 });
    store = await startStore({ broker });
    sub = await subscribeEvents({
      mqttUrl: broker.url,
      clientId: 'cal-events-test',
      clean: true,
      topics: ['qlab/calibration-store/#'],
      onEvent: (e) => {
        got.push(e);
      },
    });
  });
  afterAll(async () => {
    await sub.close();
    await store.close();
    await broker.close();
    files.cleanup();
  });

  it('publishes calibration.uploaded, result.uploaded and deletions', async () => {
    const zip = await makeZip(path.join(files.dir, 'a.zip'), { 'a.txt': 'a' });
    const cal = await request(store.app)
      .post('/calibrations/upload')
      .field('hashID', 'h1')
      .field('notes', 'n')
      .attach('archive', zip)
      .expect(200);
    await request(store.app)
      .post('/results/upload')
      .field('hashID', 'h1')
      .field('name', 'rb')
      .attach('archive', zip)
      .expect(200);
    await request(store.app).delete(`/calibrations/${cal.body.id}`).expect(204);
    await waitFor(() => got.length === 3);
    expect(got.map((e) => e.type)).toEqual([
      'calibration.uploaded',
      'result.uploaded',
      'calibration.deleted',
    ]);
    expect(got[0]).toMatchObject({
      specversion: '1.0',
      source: '/qlab/calibration-store',
      subject: `calibrations/${cal.body.id}`,
      data: { id: cal.body.id, hashID: 'h1', notes: 'n', sha256: cal.body.sha256 },
    });
    expect(got[1]?.data).toMatchObject({ hashID: 'h1', name: 'rb' });
  });

  it('writes no event for a refused upload', async () => {
    const before = got.length;
    await request(store.app).post('/calibrations/upload').field('hashID', 'h1').expect(400);
    await new Promise((r) => setTimeout(r, 200));
    expect(got.length).toBe(before);
    expect(await countRows(store.knex, 'event_outbox')).toBe(0);
  });
});
