import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from '@qlab/testkit';
import { createStorage, IndexedCPClient, SQLiteStorage } from '../src';

describe("the seed's storage API and client conveniences", () => {
  const tmp = tempDir('qlab-storage-');
  afterAll(() => tmp.cleanup());
  let n = 0;
  const dbPath = () => path.join(tmp.dir, `s-${n++}`, 'data.db');

  it('saves, loads, lists, counts and deletes JSON objects, and keeps them across a reopen', async () => {
    const file = dbPath();
    const storage = createStorage('sqlite', { dbPath: file });
    await storage.initialize();
    await storage.save('user:123', { name: 'Alice', email: 'alice@example.com', age: 30 });
    await storage.save('user:7', { name: 'Bob', tags: ['x'] });
    expect(await storage.load('user:123')).toEqual({ name: 'Alice', email: 'alice@example.com', age: 30 });
    expect(await storage.load('nobody')).toBeNull();
    expect(await storage.exists('user:7')).toBe(true);
    expect(await storage.exists('nobody')).toBe(false);
    expect(await storage.list()).toEqual(['user:123', 'user:7']);
    expect(await storage.loadAll()).toHaveLength(2);
    expect(await storage.count()).toBe(2);
    await storage.save('user:7', { name: 'Robert' }); // overwrite
    expect(await storage.load('user:7')).toEqual({ name: 'Robert' });
    expect(await storage.delete('user:7')).toBe(true);
    expect(await storage.delete('user:7')).toBe(false);
    await storage.close();

    const again = new SQLiteStorage({ dbPath: file });
    expect(await again.list()).toEqual(['user:123']); // initialize() is implied
    await again.close();
    expect(existsSync(file)).toBe(true);
  });

  it('cleans up entries older than a given age, by their last save', async () => {
    let t = 1_000_000_000;
    const storage = createStorage('sqlite', { dbPath: dbPath(), now: () => t, tableName: 'custom_table' });
    await storage.save('old', { v: 1 });
    t += 10_000;
    await storage.save('new', { v: 2 });
    t += 10_000;
    expect(await storage.cleanupOld(15)).toBe(1);
    expect(await storage.list()).toEqual(['new']);
    expect(await storage.cleanupOld(0)).toBe(1);
    expect(await storage.count()).toBe(0);
    await expect(storage.cleanupOld(-1)).rejects.toThrow('seconds');
    await storage.close();
  });

  it('refuses what it cannot store faithfully, and hostile table names', async () => {
    expect(() => createStorage('sqlite', { dbPath: dbPath(), tableName: 'x"; drop table y; --' })).toThrow(
      'table name',
    );
    expect(() => createStorage('mongo' as 'sqlite')).toThrow('not known');
    const storage = createStorage('sqlite', { dbPath: dbPath() });
    await expect(storage.save('', { a: 1 })).rejects.toThrow('key');
    await expect(storage.save('k'.repeat(2000), { a: 1 })).rejects.toThrow('key');
    await expect(storage.save('k', [1, 2] as unknown as Record<string, unknown>)).rejects.toThrow('objects');
    await expect(storage.save('k', null as unknown as Record<string, unknown>)).rejects.toThrow('objects');
    // Keys are data, never SQL.
    await storage.save("'; drop table storage; --", { ok: true });
    expect(await storage.load("'; drop table storage; --")).toEqual({ ok: true });
    await storage.close();
  });

  it('closes storage and client at the end of an `await using` block', async () => {
    const closed = jest.spyOn(SQLiteStorage.prototype, 'close');
    {
      await using storage = createStorage('sqlite', { dbPath: dbPath() });
      await storage.save('k', { v: 1 });
    }
    expect(closed).toHaveBeenCalledTimes(1);
    closed.mockRestore();

    let escaped: IndexedCPClient | undefined;
    {
      await using client = new IndexedCPClient({ storagePath: dbPath(), logLevel: 'silent' });
      await client.initialize();
      expect(client.status()).toEqual([]);
      escaped = client;
    }
    expect(() => escaped?.status()).toThrow('initialize');
  });

  it('logs at the level asked for, by option or INDEXEDCP_LOG_LEVEL, to stderr', async () => {
    const lines: string[] = [];
    const write = jest.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
      lines.push(String(chunk));
      return true;
    });
    const input = path.join(tmp.dir, 'note.txt');
    writeFileSync(input, 'hello');
    try {
      const quiet = new IndexedCPClient({ storagePath: dbPath(), logLevel: 'warn' });
      await quiet.initialize();
      await quiet.addFile(input);
      await quiet.close();
      expect(lines).toEqual([]);

      process.env.INDEXEDCP_LOG_LEVEL = 'DEBUG';
      const chatty = new IndexedCPClient({ storagePath: dbPath() });
      await chatty.initialize();
      await chatty.addFile(input);
      await chatty.close();
      expect(lines.join('')).toContain('[IndexedCPClient] File');
      expect(lines.join('')).toContain('added to buffer with 1 chunks');
    } finally {
      delete process.env.INDEXEDCP_LOG_LEVEL;
      write.mockRestore();
    }
    expect(() => new IndexedCPClient({ logLevel: 'loud' })).toThrow('log level "loud"');
  });
});
