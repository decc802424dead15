import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { type CloudEvent, type EmbeddedBroker, startEmbeddedBroker, subscribeEvents } from '@qlab/events';
import { waitFor } from '@qlab/testkit';
import request from 'supertest';
import { auth, type RunningUploads, startUploads, tus } from './helpers';

/** Sessions, completion and events; run on SQLite and on PostgreSQL. */
export function uploadStorageContract(engine: string, pgUrl?: string) {
  describe(`upload sessions on ${engine}`, () => {
    let broker: EmbeddedBroker;
    let up: RunningUploads;
    const events: CloudEvent[] = [];
    let close: () => Promise<void>;

    beforeAll(async () => {
      broker = await startEmbeddedBroker({ port: 0 });
      up = await startUploads({ pathMode: 'allow-paths', broker, pgUrl });
      const sub = await subscribeEvents({
        mqttUrl: broker.url,
        clientId: `uploads-${engine}`,
        clean: true,
        topics: ['qlab/chunked-upload/#'],
        onEvent: (e) => {
          events.push(e);
        },
      });
      close = async () => {
        await sub.close();
        await up.close();
        await broker.close();
      };
    });
    afterAll(async () => close());

    it('completes an IndexedCP upload once and publishes upload.completed once', async () => {
      const parts = [randomBytes(2000), randomBytes(10)];
      const send = (i: number) =>
        request(up.app)
          .post('/upload')
          .set(auth)
          .set({
            'X-Chunk-Index': String(i),
            'X-File-Name': 'runs/r1/out.bin',
            'X-Chunk-Total': '2',
            'X-Upload-Id': `c-${engine}`,
          })
          .type('application/octet-stream')
          .send(parts[i]!);
      await send(1).expect(200);
      await send(1).expect(200);
      const done = await send(0).expect(200);
      await send(0).expect(200);
      expect(done.body).toMatchObject({ complete: true, actualFilename: 'runs/r1/out.bin' });
      expect(readFileSync(path.join(up.uploadDir, 'runs/r1/out.bin')).equals(Buffer.concat(parts))).toBe(
        true,
      );
      await waitFor(() =>
        events.some((e) => (e.data as { clientFilename: string }).clientFilename === 'runs/r1/out.bin'),
      );
      await new Promise((r) => setTimeout(r, 200));
      const mine = events.filter(
        (e) => (e.data as { clientFilename: string }).clientFilename === 'runs/r1/out.bin',
      );
      expect(mine).toHaveLength(1);
      expect(mine[0]).toMatchObject({
        type: 'upload.completed',
        data: { protocol: 'indexedcp', filename: 'runs/r1/out.bin', size: 2010 },
      });
    });

    it('completes a tus upload with its event, and refuses a second writer of one target', async () => {
      const meta = `filename ${Buffer.from('runs/r2/t.bin').toString('base64')}`;
      const a = await request(up.app)
        .post('/files')
        .set(tus)
        .set('Upload-Length', '5')
        .set('Upload-Metadata', meta)
        .expect(201);
      await request(up.app)
        .post('/files')
        .set(tus)
        .set('Upload-Length', '5')
        .set('Upload-Metadata', meta)
        .expect(409);
      const id = a.headers.location!.split('/').pop();
      await request(up.app)
        .patch(`/files/${id}`)
        .set(tus)
        .set({ 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' })
        .send(Buffer.from('hello'))
        .expect(204);
      await waitFor(() => events.some((e) => (e.data as { id: string }).id === id));
      expect(readFileSync(path.join(up.uploadDir, 'runs/r2/t.bin'), 'utf8')).toBe('hello');
      // The target is free again once the first upload finished: a new one gets a suffixed name.
      const b = await request(up.app)
        .post('/files')
        .set(tus)
        .set('Upload-Length', '1')
        .set('Upload-Metadata', meta)
        .expect(201);
      const bid = b.headers.location!.split('/').pop();
      const info = await request(up.app).get(`/uploads/${bid}`).set(auth).expect(200);
      expect(info.body.filename).toMatch(/^runs\/r2\/t_\d+\.bin$/);
    });

    it('lists and counts uploads', async () => {
      const stats = await request(up.app).get('/stats').set(auth).expect(200);
      expect(stats.body.uploads.complete).toBeGreaterThanOrEqual(2);
      const list = await request(up.app).get('/uploads?q=r1').set(auth).expect(200);
      expect(list.body.items[0]).toMatchObject({ filename: 'runs/r1/out.bin', status: 'complete' });
      // LIKE wildcards in q are literal.
      expect((await request(up.app).get('/uploads?q=%25').set(auth)).body.total).toBe(0);
    });
  });
}
