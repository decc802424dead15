import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { BlobStore } from '../src';

/** `size` bytes of a repeatable pattern, generated as they are read (nothing held whole). */
export function generated(size: number, seed = 1): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= size) return void this.push(null);
      const n = Math.min(1024 * 1024, size - sent);
      const chunk = Buffer.alloc(n);
      for (let i = 0; i < n; i++) chunk[i] = ((sent + i) * 2654435761 + seed) >>> 24;
      sent += n;
      this.push(chunk);
    },
  });
}

export async function sha256Of(stream: Readable): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of stream) h.update(chunk as Buffer);
  return h.digest('hex');
}

async function bytesOf(stream: Readable | undefined): Promise<Buffer> {
  if (!stream) throw new Error('no such object');
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(chunk as Buffer);
  return Buffer.concat(parts);
}

const fromString = (s: string) => Readable.from([Buffer.from(s)]);

/** A body that sends `size` bytes and then fails, as a client that drops mid-upload. */
function failingAfter(size: number): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= size) return void this.destroy(new Error('client went away'));
      const n = Math.min(1024 * 1024, size - sent);
      sent += n;
      this.push(Buffer.alloc(n, 7));
    },
  });
}

async function keys(store: BlobStore, prefix?: string): Promise<string[]> {
  const out: string[] = [];
  for await (const b of store.list(prefix)) out.push(b.key);
  return out;
}

/**
 * What every blob store must do, run against each implementation (tus-node-server's DataStore
 * suite is the model): `open` gives a fresh, empty store.
 */
export function blobStoreContract(name: string, open: () => Promise<BlobStore>) {
  describe(`the blob store contract: ${name}`, () => {
    let store: BlobStore;
    beforeEach(async () => {
      store = await open();
    });

    it('streams a 40 MiB object in and out, byte for byte, and knows its size', async () => {
      const size = 40 * 1024 * 1024 + 123;
      const want = await sha256Of(generated(size));
      const info = await store.put('archives/ab/abcdef.zip', generated(size));
      expect(info).toMatchObject({ key: 'archives/ab/abcdef.zip', size });
      expect(await sha256Of((await store.get('archives/ab/abcdef.zip'))!)).toBe(want);
      expect((await store.head('archives/ab/abcdef.zip'))?.size).toBe(size);
    });

    it('takes a local file in, and refuses one that is not there or a bad key', async () => {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'qlab-movefile-'));
      try {
        const file = path.join(dir, 'upload.part');
        writeFileSync(file, 'checked upload');
        await expect(store.moveFile('../up', file)).rejects.toThrow(RangeError);
        expect(existsSync(file)).toBe(true);
        const info = await store.moveFile('archives/00/11/x.zip', file);
        expect(info).toMatchObject({ key: 'archives/00/11/x.zip', size: 14 });
        expect(existsSync(file)).toBe(false);
        expect((await bytesOf(await store.get('archives/00/11/x.zip'))).toString()).toBe('checked upload');
        // The same key again replaces it whole.
        writeFileSync(file, 'again');
        await store.moveFile('archives/00/11/x.zip', file);
        expect((await bytesOf(await store.get('archives/00/11/x.zip'))).toString()).toBe('again');
        await expect(store.moveFile('missing.zip', path.join(dir, 'nope'))).rejects.toThrow(/ENOENT/);
        expect(await keys(store)).toEqual(['archives/00/11/x.zip']);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('reads byte ranges as HTTP has them (inclusive end, open end)', async () => {
      await store.put('r.txt', fromString('0123456789'));
      expect((await bytesOf(await store.get('r.txt', { start: 2, end: 4 }))).toString()).toBe('234');
      expect((await bytesOf(await store.get('r.txt', { start: 7 }))).toString()).toBe('789');
      expect((await bytesOf(await store.get('r.txt', { start: 9, end: 9 }))).toString()).toBe('9');
      await expect(store.get('r.txt', { start: 5, end: 4 })).rejects.toThrow(RangeError);
      await expect(store.get('r.txt', { start: -1 })).rejects.toThrow(RangeError);
    });

    it('answers undefined for what is not there, and deleting it twice is fine', async () => {
      expect(await store.get('nothing/here')).toBeUndefined();
      expect(await store.head('nothing/here')).toBeUndefined();
      await store.put('gone.bin', fromString('x'));
      await store.delete('gone.bin');
      await store.delete('gone.bin');
      expect(await store.head('gone.bin')).toBeUndefined();
      expect(await keys(store)).toEqual([]);
      // A "folder" is not an object.
      await store.put('dir/file', fromString('x'));
      expect(await store.get('dir')).toBeUndefined();
      expect(await store.head('dir')).toBeUndefined();
    });

    it('replaces an object whole, and a failed put leaves the old one and nothing else', async () => {
      await store.put('jobs/j1/out.bin', fromString('old'));
      await store.put('jobs/j1/out.bin', fromString('new!'));
      expect((await bytesOf(await store.get('jobs/j1/out.bin'))).toString()).toBe('new!');
      // 20 MiB then an error: past the first multipart part on S3.
      await expect(store.put('jobs/j1/out.bin', failingAfter(20 * 1024 * 1024))).rejects.toThrow();
      expect((await bytesOf(await store.get('jobs/j1/out.bin'))).toString()).toBe('new!');
      await expect(store.put('jobs/j1/never.bin', failingAfter(3 * 1024 * 1024))).rejects.toThrow();
      expect(await store.head('jobs/j1/never.bin')).toBeUndefined();
      expect(await keys(store)).toEqual(['jobs/j1/out.bin']);
    });

    it('takes Hive partition keys (segments with "=")', async () => {
      await store.put('lake/test/runs/day=2026-12-01/data_0.parquet', fromString('p'));
      expect(await keys(store, 'lake/test/runs/')).toEqual(['lake/test/runs/day=2026-12-01/data_0.parquet']);
    });

    it('lists by prefix in key order, across pages', async () => {
      const names = Array.from({ length: 1105 }, (_, i) => `many/${String(i).padStart(4, '0')}`);
      for (let i = 0; i < names.length; i += 50)
        await Promise.all(names.slice(i, i + 50).map((k) => store.put(k, fromString(k))));
      await store.put('manyx', fromString('3'));
      expect(await keys(store, 'many/')).toEqual(names);
      expect((await keys(store, 'many')).length).toBe(1106);
      expect(await keys(store, 'many/110')).toEqual([
        'many/1100',
        'many/1101',
        'many/1102',
        'many/1103',
        'many/1104',
      ]);
      expect(await keys(store, 'zzz')).toEqual([]);
      const listed: { key: string; size: number }[] = [];
      for await (const b of store.list('many/0001')) listed.push({ key: b.key, size: b.size });
      expect(listed).toEqual([{ key: 'many/0001', size: 9 }]);
    }, 60_000);

    it('refuses keys that are not relative paths of safe segments', async () => {
      for (const bad of [
        '',
        '/abs',
        '../up',
        'a/../b',
        'a/./b',
        'a//b',
        'a/',
        '.hidden',
        'a/.staging',
        'nul\u0000',
        'sp ace',
        'é',
        '-x',
        '=x',
        'a/=b',
        'x'.repeat(1025),
      ]) {
        await expect(store.put(bad, fromString('x'))).rejects.toThrow(RangeError);
        await expect(store.get(bad)).rejects.toThrow(RangeError);
        await expect(store.head(bad)).rejects.toThrow(RangeError);
        await expect(store.delete(bad)).rejects.toThrow(RangeError);
      }
      await expect(keys(store, '../')).rejects.toThrow(RangeError);
      expect(await keys(store)).toEqual([]);
    });

    it('keeps memory flat for a 300 MiB put and get', async () => {
      const size = 300 * 1024 * 1024;
      global.gc?.();
      const before = process.memoryUsage().rss;
      let peak = before;
      const watch = setInterval(() => {
        peak = Math.max(peak, process.memoryUsage().rss);
      }, 20);
      try {
        await store.put('big.bin', generated(size));
        expect(await sha256Of((await store.get('big.bin'))!)).toBe(await sha256Of(generated(size)));
      } finally {
        clearInterval(watch);
      }
      const growth = (peak - before) / 1024 / 1024;
      console.log(`${name}: RSS grew ${growth.toFixed(0)} MiB for a 300 MiB put and get`);
      expect(growth).toBeLessThan(150);
    }, 120_000);
  });
}
