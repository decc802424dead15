import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { closedPort, tempDir } from '@qlab/testkit';
import { type RunningStore, startStore } from 'calibration-store/testing';
import {
  calibrationsDownload,
  calibrationsGetLatest,
  calibrationsList,
  calibrationsUpload,
  downloadArchive,
  QlabClientError,
  readClientConfig,
  resultsDownload,
  resultsList,
  resultsUpload,
  setServer,
  unpack,
  unpackFile,
} from '../src';

describe('SDK against a real calibration store', () => {
  let store: RunningStore;
  const tmp = tempDir('qlab-sdk-');
  const configFile = path.join(tmp.dir, 'client.json');
  const src = path.join(tmp.dir, 'src');
  let opts: { configFile: string };

  beforeAll(async () => {
    store = await startStore({ apiToken: 'tok' });
    mkdirSync(path.join(src, 'platform'), { recursive: true });
    writeFileSync(path.join(src, 'a.txt'), 'alpha');
    writeFileSync(path.join(src, 'platform', 'parameters.json'), JSON.stringify({ nshots: 1024 }));
    await setServer(store.url, 'tok', configFile);
    opts = { configFile };
  });
  afterAll(async () => {
    await store.close();
    tmp.cleanup();
  });

  it('persists the server and token (set_server)', async () => {
    expect(await readClientConfig(configFile)).toEqual({ server_url: store.url, api_token: 'tok' });
    expect(statSync(configFile).mode & 0o777).toBe(0o600);
    await expect(setServer('not a url', undefined, path.join(tmp.dir, 'x.json'))).rejects.toThrow();
  });

  it('uploads zipped files and folders, lists, gets latest, downloads and unpacks', async () => {
    const up = await calibrationsUpload(
      'abc123',
      'first batch',
      [path.join(src, 'a.txt'), path.join(src, 'platform')],
      opts,
    );
    expect(up).toMatchObject({ status: 'ok', id: expect.any(Number) });
    const items = await calibrationsList(opts);
    expect(items[0]).toMatchObject({ hashID: 'abc123', notes: 'first batch' });
    const latest = await calibrationsGetLatest(opts);
    expect(latest).toMatchObject({ hashID: 'abc123', notes: 'first batch' });

    const { notes, filename, data } = await calibrationsDownload('abc123', opts);
    expect(notes).toBe('first batch');
    expect(filename).toBe('archive.zip');
    const out = path.join(tmp.dir, 'unpacked');
    const written = await unpack(out, data);
    expect(written).toHaveLength(2);
    expect(readFileSync(path.join(out, 'a.txt'), 'utf8')).toBe('alpha');
    expect(JSON.parse(readFileSync(path.join(out, 'platform', 'parameters.json'), 'utf8'))).toEqual({
      nshots: 1024,
    });
  });

  it('round-trips results by hashID and name', async () => {
    await resultsUpload('abc123', 'daily-check', 'passed', [path.join(src, 'a.txt')], opts);
    await resultsUpload('abc123', 'other', 'x', [path.join(src, 'a.txt')], opts);
    const r = await resultsDownload('abc123', 'daily-check', opts);
    expect(r.notes).toBe('passed');
    expect((await resultsList({ ...opts, name: 'other' })).map((i) => i.name)).toEqual(['other']);
  });

  it('streams a download to disk with progress and a matching checksum', async () => {
    const big = path.join(tmp.dir, 'big.bin');
    writeFileSync(big, Buffer.alloc(3 * 1024 * 1024, 7));
    const up = await calibrationsUpload('big', '', [big], { ...opts, compressionLevel: 0 });
    const dest = path.join(tmp.dir, 'big.zip');
    const seen: number[] = [];
    const info = await downloadArchive({ kind: 'calibration', hashID: 'big' }, dest, {
      ...opts,
      onProgress: (done) => seen.push(done),
    });
    const sha = createHash('sha256').update(readFileSync(dest)).digest('hex');
    expect(sha).toBe(up.sha256);
    expect(info.sha256).toBe(up.sha256);
    expect(seen.at(-1)).toBe(statSync(dest).size);
    const unpacked = await unpackFile(path.join(tmp.dir, 'big-out'), dest);
    expect(statSync(unpacked[0]!).size).toBe(3 * 1024 * 1024);
  });

  it('returns {} for latest on an empty store, and explains network and token failures', async () => {
    const empty = await startStore();
    try {
      expect(await calibrationsGetLatest({ serverUrl: empty.url, configFile })).toEqual({});
    } finally {
      await empty.close();
    }
    const closed = await closedPort();
    await expect(calibrationsList({ serverUrl: `http://127.0.0.1:${closed}`, configFile })).rejects.toThrow(
      /cannot reach the server/,
    );
    const bad = calibrationsList({ ...opts, apiToken: 'wrong' });
    await expect(bad).rejects.toBeInstanceOf(QlabClientError);
    await expect(calibrationsList({ ...opts, apiToken: 'wrong' })).rejects.toThrow(/refused the API token/);
    await expect(calibrationsDownload('missing', opts)).rejects.toMatchObject({ status: 404 });
  });

  it('refuses to zip missing paths or two inputs with the same name', async () => {
    await expect(calibrationsUpload('h', '', [path.join(tmp.dir, 'nope')], opts)).rejects.toThrow(
      /no such file/,
    );
    const other = path.join(tmp.dir, 'other');
    mkdirSync(other, { recursive: true });
    writeFileSync(path.join(other, 'a.txt'), 'beta');
    await expect(
      calibrationsUpload('h', '', [path.join(src, 'a.txt'), path.join(other, 'a.txt')], opts),
    ).rejects.toThrow(/both be stored/);
    await expect(calibrationsUpload('h', '', [], opts)).rejects.toThrow(/at least one/);
  });

  it('refuses to unpack entries that climb out of the folder', async () => {
    // A zip whose only entry is "../evil.txt", written by hand (archiver would clean the name).
    const name = Buffer.from('../evil.txt');
    const body = Buffer.from('pwned');
    const crc = require('node:zlib').crc32 ? require('node:zlib').crc32(body) : crc32(body);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt32LE(crc >>> 0, 14);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(body.length, 22);
    local.writeUInt16LE(name.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt32LE(crc >>> 0, 16);
    central.writeUInt32LE(body.length, 20);
    central.writeUInt32LE(body.length, 24);
    central.writeUInt16LE(name.length, 28);
    const cdOffset = local.length + name.length + body.length;
    const end = Buffer.alloc(22);
    end.writeUInt32LE(0x06054b50, 0);
    end.writeUInt16LE(1, 8);
    end.writeUInt16LE(1, 10);
    end.writeUInt32LE(central.length + name.length, 12);
    end.writeUInt32LE(cdOffset, 16);
    const zip = Buffer.concat([local, name, body, central, name, end]);
    await expect(unpack(path.join(tmp.dir, 'safe'), zip)).rejects.toThrow(/invalid relative path|outside/);
  });
});

function crc32(buf: Buffer): number {
  let c = ~0;
  for (const byte of buf) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}
