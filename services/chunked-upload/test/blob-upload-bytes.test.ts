/**
 * Upload bytes in a blob store (replica mode), on both stores: segments by offset, partial
 * bodies kept, refused ones gone, a crash's leftovers written over or ignored, publishing once
 * and never over another file. And the name → object key encoding.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { type BlobStore, FileBlobStore } from '@qlab/blob-store';
import { type LocalS3, startLocalS3 } from '@qlab/blob-store/testing';
import { tempDir } from '@qlab/testkit';
import { BlobUploadBytes } from '../src/storage/blob-upload-bytes';
import { objectKeyOf } from '../src/storage/object-names';
import { TooManyBytes } from '../src/storage/upload-bytes';

const ID = 'a'.repeat(32);
const bytesOf = async (store: BlobStore, key: string) => {
  const body = await store.get(key);
  if (!body) return undefined;
  const parts: Buffer[] = [];
  for await (const p of body) parts.push(p as Buffer);
  return Buffer.concat(parts);
};
const keys = async (store: BlobStore, prefix = '') => {
  const out: string[] = [];
  for await (const o of store.list(prefix)) out.push(o.key);
  return out;
};
/** A body that sends `pieces` and then fails as a dropped client does. */
async function* dropsAfter(pieces: Buffer[]): AsyncGenerator<Buffer> {
  for (const p of pieces) yield p;
  throw Object.assign(new Error('aborted'), { code: 'ECONNRESET' });
}

function contract(name: string, open: () => Promise<BlobStore>) {
  describe(`upload bytes in ${name}`, () => {
    let store: BlobStore;
    let bytes: BlobUploadBytes;
    const data = bytesFromSeed(300_000);
    const dataPath = `staging/${ID}.bin`;
    beforeEach(async () => {
      store = await open();
      bytes = new BlobUploadBytes(store);
      await bytes.init();
    });

    it('appends segments, keeps what a dropped body brought, and publishes the whole once', async () => {
      expect(await bytes.writeAt(dataPath, 0, Readable.from([data.subarray(0, 100_000)]), 1e9)).toEqual({
        bytes: 100_000,
        interrupted: false,
      });
      const dropped = await bytes.writeAt(
        dataPath,
        100_000,
        dropsAfter([data.subarray(100_000, 150_000)]),
        1e9,
      );
      expect(dropped).toEqual({ bytes: 50_000, interrupted: true });
      const hash = createHash('sha256');
      await bytes.writeAt(dataPath, 150_000, Readable.from([data.subarray(150_000)]), 1e9, [hash]);
      expect(hash.digest('hex')).toBe(createHash('sha256').update(data.subarray(150_000)).digest('hex'));
      await bytes.publish(dataPath, 'runs/données 1.bin', data.length);
      expect(await bytesOf(store, objectKeyOf('runs/données 1.bin'))).toEqual(data);
      expect(await keys(store, 'staging/')).toEqual([]);
      // Published again after a commit that failed: already there, nothing to do.
      await bytes.publish(dataPath, 'runs/données 1.bin', data.length);
      // Another upload's bytes never replace it.
      await bytes.writeAt(dataPath, 0, Readable.from([Buffer.from('other')]), 1e9);
      await expect(bytes.publish(dataPath, 'runs/données 1.bin', 5)).rejects.toMatchObject({ status: 409 });
      expect(await bytes.existsInUploadDir('runs/données 1.bin')).toBe(true);
      expect(await bytes.fileOnTheWay('runs/données 1.bin/x')).toBe('runs/données 1.bin');
    });

    it('stores nothing of a body past its room', async () => {
      await bytes.writeAt(dataPath, 0, Readable.from([data.subarray(0, 10)]), 1e9);
      await expect(
        bytes.writeAt(dataPath, 10, Readable.from([data.subarray(10, 100), data.subarray(100, 200)]), 150),
      ).rejects.toBeInstanceOf(TooManyBytes);
      expect(await keys(store, `${dataPath}/`)).toEqual([`${dataPath}/0000000000000000`]);
    });

    it('writes over what a crash left at an offset, ignores what lies past the chain, and truncates', async () => {
      await bytes.writeAt(dataPath, 0, Readable.from([data.subarray(0, 1000)]), 1e9);
      // Stored, but its offset never recorded (the process died): the client sends from 1000 again.
      await bytes.writeAt(dataPath, 1000, Readable.from([data.subarray(1000, 3000)]), 1e9);
      await bytes.writeAt(dataPath, 1000, Readable.from([data.subarray(1000, 1500)]), 1e9);
      await store.put(`${dataPath}/0000000000009999`, Readable.from([Buffer.from('stale')]));
      await bytes.truncateTo(dataPath, 1200);
      await bytes.writeAt(dataPath, 1200, Readable.from([data.subarray(1200, 2000)]), 1e9);
      await bytes.publish(dataPath, 'cut.bin', 2000);
      expect(await bytesOf(store, 'files/cut.bin')).toEqual(data.subarray(0, 2000));
      expect(await keys(store, 'staging/')).toEqual([]);
    });

    it('copies, moves and removes data, and finds staging nobody touched', async () => {
      const chunk = bytes.chunkBufferPath(ID, 3);
      await bytes.writeAt(chunk, 0, Readable.from([data.subarray(0, 500)]), 1e9);
      expect(await bytes.copyInto(chunk, dataPath, 0)).toBe(500);
      const other = `staging/${'b'.repeat(32)}.bin`;
      await bytes.move(dataPath, other);
      expect(await keys(store, `${dataPath}/`)).toEqual([]);
      expect(await bytes.staleStaging(60_000)).toEqual([]);
      expect((await bytes.staleStaging(-1)).map((s) => s.entry).sort()).toEqual([
        `${'a'.repeat(32)}.chunks`,
        `${'b'.repeat(32)}.bin`,
      ]);
      await bytes.removeChunkBuffers(ID);
      await bytes.remove(other);
      expect(await keys(store, 'staging/')).toEqual([]);
      await expect(bytes.removeStaging('../../etc')).rejects.toThrow(RangeError);
    });

    it('refuses names whose key cannot be stored', async () => {
      await expect(bytes.checkTargetFolder(`${'é'.repeat(200)}.bin`)).rejects.toThrow(/cannot be stored/);
      await bytes.checkTargetFolder('reports/2024/data.csv');
    });
  });
}

function bytesFromSeed(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 2654435761) >>> 24;
  return b;
}

const tmp = tempDir('qlab-blob-bytes-');
let n = 0;
afterAll(() => tmp.cleanup());
contract('a folder', async () => FileBlobStore.open(`${tmp.dir}/${n++}`));

describe('on S3', () => {
  let s3: LocalS3;
  beforeAll(async () => {
    s3 = await startLocalS3('qlab-bytes');
  }, 60_000);
  afterAll(() => s3.close());
  contract('S3', async () => s3.store(`run${n++}`));
});

describe('object keys of finished files', () => {
  it('keep plain names, escape the rest, and never give two names one key', () => {
    expect(objectKeyOf('reports/2024/data.csv')).toBe('files/reports/2024/data.csv');
    expect(objectKeyOf('my file.csv')).toBe('files/my_20file.csv');
    expect(objectKeyOf('.env')).toBe('files/_2Eenv');
    expect(objectKeyOf('-rf')).toBe('files/_2Drf');
    expect(objectKeyOf('données')).toBe('files/donn_C3_A9es');
    expect(objectKeyOf('1730728950123_a1b2c3d4_x.txt')).toBe('files/1730728950123_a1b2c3d4_x.txt');
    const names = ['a b', 'a_20b', 'a_2', 'a_', '_20', '_5F20', 'a=b', 'a_3Db', 'x.y', 'x_2Ey'];
    const encoded = names.map(objectKeyOf);
    expect(new Set(encoded).size).toBe(names.length);
    expect(() => objectKeyOf('é'.repeat(200))).toThrow(RangeError);
    // Under the 1024-byte key, but one part over a file name's 255 bytes (a folder store).
    expect(() => objectKeyOf(`${'é'.repeat(90)}.pdf`)).toThrow(/over 255/);
  });
});
