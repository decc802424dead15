import { readdirSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { tempDir } from '@qlab/testkit';
import { FileBlobStore } from '../src';
import { blobStoreContract } from './blob-store.contract';

const tmp = tempDir('qlab-blobs-');
let n = 0;
afterAll(() => tmp.cleanup());

blobStoreContract('filesystem', () => FileBlobStore.open(path.join(tmp.dir, `store-${n++}`)));

describe('the filesystem blob store', () => {
  it('leaves no staging file after a failed put, and clears old ones when opened', async () => {
    const root = path.join(tmp.dir, 'staging');
    const store = await FileBlobStore.open(root);
    const failing = new Readable({
      read() {
        this.destroy(new Error('gone'));
      },
    });
    await expect(store.put('a/b.bin', failing)).rejects.toThrow('gone');
    expect(readdirSync(path.join(root, '.staging'))).toEqual([]);
    expect(readdirSync(root)).toEqual(['.staging']);
  });

  it('removes at open only staging files a day old: another process may be writing the rest', async () => {
    const root = path.join(tmp.dir, 'shared');
    await FileBlobStore.open(root);
    const fresh = path.join(root, '.staging', 'another-process-writing');
    const stale = path.join(root, '.staging', 'crashed-yesterday');
    writeFileSync(fresh, 'x');
    writeFileSync(stale, 'y');
    const dayAgo = new Date(Date.now() - 25 * 3600_000);
    utimesSync(stale, dayAgo, dayAgo);
    await FileBlobStore.open(root);
    expect(readdirSync(path.join(root, '.staging'))).toEqual(['another-process-writing']);
  });

  it('lists in byte order of whole keys, as S3 does: "a-c" before "a/b"', async () => {
    // (s3rver, the suite's S3 stand-in, walks its folders instead, so this is checked here.)
    const store = await FileBlobStore.open(path.join(tmp.dir, 'order'));
    for (const k of ['a/b', 'a-c', 'a.d', 'a0']) await store.put(k, Readable.from([Buffer.from(k)]));
    const listed: string[] = [];
    for await (const b of store.list('a')) listed.push(b.key);
    expect(listed).toEqual(['a-c', 'a.d', 'a/b', 'a0']);
  });

  it('removes folders a delete leaves empty, as S3 has none', async () => {
    const root = path.join(tmp.dir, 'folders');
    const store = await FileBlobStore.open(root);
    await store.put('jobs/j1/in/a.txt', Readable.from([Buffer.from('a')]));
    await store.put('jobs/j2/out.txt', Readable.from([Buffer.from('b')]));
    await store.delete('jobs/j1/in/a.txt');
    expect(readdirSync(path.join(root, 'jobs'))).toEqual(['j2']);
  });
});
