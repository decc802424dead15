import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { tempDir, waitFor } from '@qlab/testkit';
import { answerOf, makeZip, type RunningStore, startStore } from './helpers';

const part = (name: string, value: Buffer | string, filename?: string) =>
  Buffer.concat([
    Buffer.from(
      `--XB\r\nContent-Disposition: form-data; name="${name}"${filename ? `; filename="${filename}"` : ''}\r\n${filename ? 'Content-Type: application/zip\r\n' : ''}\r\n`,
    ),
    Buffer.isBuffer(value) ? value : Buffer.from(value),
    Buffer.from('\r\n'),
  ]);
const form = (...parts: Buffer[]) => Buffer.concat([...parts, Buffer.from('--XB--\r\n')]);

describe('calibration-store refuses bad uploads at once and keeps nothing', () => {
  const files = tempDir('qlab-cal-hostile-');
  let store: RunningStore;
  let zip: Buffer;
  let big: Buffer;
  beforeAll(async () => {
    store = await startStore({ maxUploadBytes: 1500 });
    zip = readFileSync(await makeZip(path.join(files.dir, 'a.zip'), { 'p.json': '{"n":1}' }));
    big = readFileSync(await makeZip(path.join(files.dir, 'big.zip'), { 'r.bin': randomBytes(2200) }));
  });
  afterAll(async () => {
    await store.close();
    files.cleanup();
  });

  const head =
    'POST /calibrations/upload HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=XB\r\n';
  const tmpFiles = () => readdirSync(store.blobs.tmpDir);
  const rows = async () => Number((await store.knex('calibrations').count({ n: '*' }).first())?.n ?? 0);

  it('answers two archive parts with 400 at once', async () => {
    const body = form(part('hashID', 'h1'), part('archive', zip, 'a.zip'), part('archive', zip, 'b.zip'));
    expect(await answerOf(store.url, head, body)).toBe(400);
    await waitFor(() => tmpFiles().length === 0);
    expect(await rows()).toBe(0);
  });

  it('answers an archive just over QIBO_MAX_UPLOAD_BYTES with 413 at once', async () => {
    expect(big.length).toBeGreaterThan(1500);
    const body = form(part('hashID', 'h2'), part('archive', big, 'big.zip'));
    expect(await answerOf(store.url, head, body)).toBe(413);
    await waitFor(() => tmpFiles().length === 0);
    expect(await rows()).toBe(0);
  });

  it('answers repeated fields, invalid UTF-8 and a truncated form with 400', async () => {
    const bad = [
      form(part('hashID', 'h3'), part('hashID', 'h4'), part('archive', zip, 'a.zip')),
      form(part('hashID', Buffer.from([0x68, 0xff, 0xfe])), part('archive', zip, 'a.zip')),
      Buffer.concat([part('hashID', 'h5'), part('archive', zip, 'a.zip')]).subarray(0, 200),
    ];
    for (const body of bad) expect(await answerOf(store.url, head, body)).toBe(400);
    await waitFor(() => tmpFiles().length === 0);
    expect(await rows()).toBe(0);
    // And a good one still goes in.
    expect(await answerOf(store.url, head, form(part('hashID', 'ok'), part('archive', zip, 'a.zip')))).toBe(
      200,
    );
    expect(await rows()).toBe(1);
  });
});
