import {
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { tempDir } from '@qlab/testkit';
import archiver from 'archiver';
import { unpack } from '../src';

/** A zip in memory: files (name → content), and symbolic links (name → target). */
async function zipOf(
  files: Record<string, string | Buffer>,
  links: Record<string, string> = {},
): Promise<Buffer> {
  const archive = archiver('zip', { zlib: { level: 9 } });
  const chunks: Buffer[] = [];
  archive.on('data', (c: Buffer) => chunks.push(c));
  const done = new Promise((resolve, reject) => {
    archive.on('end', resolve);
    archive.on('error', reject);
  });
  for (const [name, content] of Object.entries(files)) archive.append(content, { name });
  for (const [name, target] of Object.entries(links)) archive.symlink(name, target);
  await archive.finalize();
  await done;
  return Buffer.concat(chunks);
}

describe('unpack never writes more, or elsewhere, than it should', () => {
  const tmp = tempDir('qlab-unpack-');
  afterAll(() => tmp.cleanup());
  let n = 0;
  const fresh = () => path.join(tmp.dir, `out-${++n}`);
  const leftovers = () => readdirSync(tmp.dir).filter((f) => f.includes('.unpack-'));

  it('refuses a zip bomb by ratio and by total size, writing nothing', async () => {
    const bomb = await zipOf({ 'zeros.bin': Buffer.alloc(64 * 1024 * 1024) });
    expect(bomb.length).toBeLessThan(1024 * 1024);
    const out = fresh();
    await expect(unpack(out, bomb)).rejects.toThrow(/expands more than 200 times/);
    expect(existsSync(out)).toBe(false);
    await expect(unpack(out, bomb, { ratio: 1e9, totalBytes: 1024 * 1024 })).rejects.toThrow(
      /more than 1048576/,
    );
    await expect(unpack(out, bomb, { ratio: 1e9, entryBytes: 1024 })).rejects.toThrow(/larger than 1024/);
    expect(existsSync(out)).toBe(false);
    expect(leftovers()).toEqual([]);
  });

  it('refuses many small entries that expand as much as one big one', async () => {
    const many = await zipOf(
      Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`z${i}.bin`, Buffer.alloc(512 * 1024)])),
    );
    const out = fresh();
    await expect(unpack(out, many)).rejects.toThrow(/the archive expands more than 200 times/);
    expect(existsSync(out)).toBe(false);
  });

  it('refuses too many entries', async () => {
    const many = await zipOf(Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`f${i}.txt`, 'x'])));
    await expect(unpack(fresh(), many, { entries: 20 })).rejects.toThrow(/more than 20 entries/);
  });

  it('refuses symbolic links in the archive, and leaves no earlier entry behind', async () => {
    const evil = await zipOf({ 'a.txt': 'first', 'b.txt': 'second' }, { link: '/etc/passwd' });
    const out = fresh();
    await expect(unpack(out, evil)).rejects.toThrow(/symbolic link/);
    expect(existsSync(out)).toBe(false);
    expect(leftovers()).toEqual([]);
  });

  it('replaces, never follows, a symbolic link already in the destination', async () => {
    const out = fresh();
    mkdirSync(out);
    const victim = path.join(tmp.dir, 'victim.txt');
    writeFileSync(victim, 'precious');
    symlinkSync(victim, path.join(out, 'params.json'));
    const outsideDir = path.join(tmp.dir, 'outside');
    mkdirSync(outsideDir);
    symlinkSync(outsideDir, path.join(out, 'sub'));
    const zip = await zipOf({ 'params.json': '{"nshots":1}', 'sub/x.txt': 'x' });
    const written = await unpack(out, zip);
    expect(written.sort()).toEqual([path.join(out, 'params.json'), path.join(out, 'sub', 'x.txt')]);
    expect(readFileSync(victim, 'utf8')).toBe('precious');
    expect(readdirSync(outsideDir)).toEqual([]);
    expect(lstatSync(path.join(out, 'params.json')).isSymbolicLink()).toBe(false);
    expect(readFileSync(path.join(out, 'params.json'), 'utf8')).toBe('{"nshots":1}');
  });

  it('merges into an existing folder, keeping files the archive does not name', async () => {
    const out = fresh();
    mkdirSync(path.join(out, 'keep'), { recursive: true });
    writeFileSync(path.join(out, 'keep', 'old.txt'), 'old');
    await unpack(out, await zipOf({ 'keep/new.txt': 'new', 'top.txt': 't' }));
    expect(readdirSync(path.join(out, 'keep')).sort()).toEqual(['new.txt', 'old.txt']);
    expect(readFileSync(path.join(out, 'top.txt'), 'utf8')).toBe('t');
  });
});
