/**
 * Two replicas of calibration-store on one PostgreSQL schema and one S3 bucket (issue 18,
 * "calibration-store: stateless on PostgreSQL + S3"): either serves what the other stored, and
 * a delete on one racing an upload of the same content on the other never leaves a row whose
 * bytes are gone, nor bytes no row points at.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { type LocalS3, startLocalS3 } from '@qlab/blob-store/testing';
import { pgSchemaUrl, pgTestUrl, tempDir } from '@qlab/testkit';
import request from 'supertest';
import { ArchiveBlobs } from '../src/storage/archive-blobs';
import { binary, makeZip, type RunningStore, startStore } from './helpers';

const pgUrl = pgTestUrl('calibration-store');
if (!pgUrl) console.log('replicas test skipped: set QLAB_TEST_PG_URL to run it against PostgreSQL');

(pgUrl ? describe : describe.skip)('two calibration-store replicas on PostgreSQL + S3', () => {
  const auth = { Authorization: 'Bearer replica-token' };
  const files = tempDir('qlab-replica-zips-');
  let s3: LocalS3;
  let a: RunningStore;
  let b: RunningStore;
  let zip: string;
  let schema: string;

  beforeAll(async () => {
    s3 = await startLocalS3();
    zip = await makeZip(path.join(files.dir, 'shared.zip'), { 'qubits.json': '{"q0": {"t1": 31.5}}' });
    const shared = pgSchemaUrl(pgUrl!);
    schema = shared.schema;
    const engine = { name: 'postgres' as const, url: pgUrl!, blobStore: () => s3.store('replicas') };
    a = await startStore({ engine, apiToken: 'replica-token', sharedDbUrl: shared.url });
    b = await startStore({ engine, apiToken: 'replica-token', sharedDbUrl: shared.url });
  });
  afterAll(async () => {
    await b?.close();
    await a?.knex.raw('drop schema if exists ?? cascade', [schema]);
    await a?.close();
    await s3?.close();
    files.cleanup();
  });

  const upload = (on: RunningStore) =>
    request(on.app).post('/calibrations/upload').set(auth).field('hashID', 'race').attach('archive', zip);
  const stored = async () => {
    const keys: string[] = [];
    for await (const o of a.blobs.store.list('archives/')) keys.push(o.key);
    return keys;
  };

  it('serves on one replica what the other stored: whole, ranged, HEAD and its entries', async () => {
    const bytes = readFileSync(zip);
    const up = await upload(a).expect(200);
    const id = up.body.id as number;
    const whole = await request(b.app)
      .get(`/calibrations/${id}/archive`)
      .set(auth)
      .buffer(true)
      .parse(binary)
      .expect(200);
    expect((whole.body as Buffer).equals(bytes)).toBe(true);
    const part = await request(b.app)
      .get(`/calibrations/${id}/archive`)
      .set(auth)
      .set('Range', 'bytes=-10')
      .buffer(true)
      .parse(binary)
      .expect(206);
    expect(part.headers['content-range']).toBe(
      `bytes ${bytes.length - 10}-${bytes.length - 1}/${bytes.length}`,
    );
    expect((part.body as Buffer).equals(bytes.subarray(-10))).toBe(true);
    const head = await request(b.app).head(`/calibrations/${id}/archive`).set(auth).expect(200);
    expect(head.headers['content-length']).toBe(String(bytes.length));
    const entries = await request(b.app).get(`/calibrations/${id}/entries`).set(auth).expect(200);
    expect(entries.body.entries.map((e: { name: string }) => e.name)).toEqual(['qubits.json']);
    await request(b.app).delete(`/calibrations/${id}`).set(auth).expect(204);
    await request(a.app).get(`/calibrations/${id}/archive`).set(auth).expect(404);
    expect(await stored()).toEqual([]);
  });

  it('never loses the bytes of a row when a delete on one races an upload of the same content on the other', async () => {
    for (let round = 0; round < 12; round++) {
      const first = await upload(a).expect(200);
      const [deleted, again, third] = await Promise.all([
        request(b.app).delete(`/calibrations/${first.body.id}`).set(auth),
        upload(a),
        upload(b),
      ]);
      expect([deleted.status, again.status, third.status]).toEqual([204, 200, 200]);
      for (const id of [again.body.id, third.body.id])
        for (const on of [a, b])
          await request(on.app).get(`/calibrations/${id}/archive`).set(auth).expect(200);
      expect(await stored()).toEqual([ArchiveBlobs.keyOf(first.body.sha256)]);
      // Both deleted, concurrently, from different replicas: the content goes with the last.
      const gone = await Promise.all([
        request(a.app).delete(`/calibrations/${again.body.id}`).set(auth),
        request(b.app).delete(`/calibrations/${third.body.id}`).set(auth),
      ]);
      expect(gone.map((r) => r.status)).toEqual([204, 204]);
      expect(await stored()).toEqual([]);
    }
  }, 60_000);
});
