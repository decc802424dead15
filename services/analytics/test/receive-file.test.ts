import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { tempDir } from '@qlab/testkit';
import { MAX_LINE_BYTES } from '../src/domain/loading';
import { receiveToFile } from '../src/routes/receive-file';

const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

/** A body as a request would stream it, cut into chunks of `size` bytes (across lines and characters). */
const body = (bytes: Buffer, size: number) => {
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) chunks.push(bytes.subarray(i, i + size));
  return Object.assign(Readable.from(chunks), { headers: {}, complete: true }) as never;
};

describe('receiveToFile', () => {
  const tmp = tempDir('qlab-analytics-receive-');
  afterAll(() => tmp.cleanup());
  const file = path.join(tmp.dir, 'body.ndjson');

  // 3,000 lines: a character split across chunks, a bad line deep in a block of good ones.
  const lines = Array.from({ length: 3000 }, (_, i) =>
    Buffer.from(`{"run_id":"r${i + 1}","model":"caf\u00e9"}`),
  );
  lines[999] = Buffer.concat([Buffer.from('{"model":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]);
  lines[1999] = Buffer.from(`{"x":${'['.repeat(65)}${']'.repeat(65)}}`);
  const input = Buffer.concat([
    Buffer.from([0xef, 0xbb, 0xbf]),
    ...lines.flatMap((l) => [l, Buffer.from('\n')]),
  ]);

  it.each([7, 4096, 65536, 1 << 20])('names the bad lines and blanks them, in chunks of %d', async (size) => {
    const { refused, plain } = await receiveToFile(body(input, size), file, 1e9, 'blank');
    expect(plain).toBe(false);
    expect(refused).toEqual([
      { line: 1000, id: null, reason: 'the line is not valid UTF-8' },
      { line: 2000, id: null, reason: 'the line nests deeper than 64 levels' },
    ]);
    const kept = [...lines];
    kept[999] = Buffer.alloc(0);
    kept[1999] = Buffer.alloc(0);
    expect(readFileSync(file).equals(Buffer.concat(kept.flatMap((l) => [l, Buffer.from('\n')])))).toBe(true);
  });

  it('keeps a last line with no line end', async () => {
    const received = await receiveToFile(body(Buffer.from('{"a":1}\n{"b":2}'), 3), file, 1e9, 'blank');
    expect(received).toEqual({ refused: [], plain: true });
    expect(readFileSync(file, 'utf8')).toBe('{"a":1}\n{"b":2}');
  });

  it('ends CSV lines written on Windows with \\n alone, and refuses a bad line by number', async () => {
    const csv = Buffer.from(Array.from({ length: 500 }, (_, i) => `r${i},m,completed\r\n`).join(''));
    await receiveToFile(body(csv, 1000), file, 1e9, 'refuse');
    expect(readFileSync(file, 'utf8')).toBe(csv.toString().replaceAll('\r\n', '\n'));
    const bad = Buffer.concat([csv, Buffer.from([0xe9, 0x0a])]);
    await expect(receiveToFile(body(bad, 1000), file, 1e9, 'refuse')).rejects.toMatchObject({
      detail: 'line 501 is not valid UTF-8',
    });
  });

  it('drops a byte order mark that comes in pieces', async () => {
    const withBom = Buffer.concat([BOM, Buffer.from('{"a":1}\n{"b":2}\n')]);
    for (const size of [1, 2, 3, 4]) {
      expect(await receiveToFile(body(withBom, size), file, 1e9, 'blank')).toEqual({
        refused: [],
        plain: true,
      });
      expect(readFileSync(file, 'utf8')).toBe('{"a":1}\n{"b":2}\n');
    }
    await receiveToFile(body(Buffer.concat([BOM, Buffer.from('{"a":1}')]), 2), file, 1e9, 'blank');
    expect(readFileSync(file, 'utf8')).toBe('{"a":1}');
  });

  it('says when a line is blank or does not start with {, so the loader numbers the lines', async () => {
    for (const text of ['{"a":1}\n\n{"b":2}\n', '{"a":1}\n  {"b":2}\n', '{"a":1}\n[1]\n'])
      expect((await receiveToFile(body(Buffer.from(text), 5), file, 1e9, 'blank')).plain).toBe(false);
  });

  it('ends NDJSON lines at \\r\\n too, and a \\r inside a line is whitespace or stays invalid', async () => {
    const text = '{"a":1}\r\n{"b":\r2}\r\r\n{"c":"x\ry"}\n';
    const { refused } = await receiveToFile(body(Buffer.from(text), 4), file, 1e9, 'blank');
    expect(refused).toEqual([]);
    expect(readFileSync(file, 'latin1')).toBe('{"a":1}\n{"b": 2} \n{"c":"x\u0001y"}\n');
  });

  it('counts blank lines only before a record', async () => {
    for (const [text, plain] of [
      ['{"a":1}\n{"b":2}\n\n\n', true],
      ['{"a":1}\n\n{"b":2}\n', false],
      ['{"a":1}\n\n', true],
    ] as const)
      expect((await receiveToFile(body(Buffer.from(text), 3), file, 1e9, 'blank')).plain).toBe(plain);
  });

  it('does not count a byte order mark toward the first line', async () => {
    const line = Buffer.alloc(MAX_LINE_BYTES, 0x20);
    line[0] = 0x7b;
    line[MAX_LINE_BYTES - 1] = 0x7d;
    const text = Buffer.concat([BOM, line, Buffer.from('\n')]);
    for (const size of [MAX_LINE_BYTES + 1, MAX_LINE_BYTES + 2, MAX_LINE_BYTES + 3, 1024 * 1024]) {
      const { refused } = await receiveToFile(body(text, size), file, 1e9, 'blank');
      expect(refused).toEqual([]);
    }
  });

  it('refuses a line over 16 MiB however the chunks fall', async () => {
    const long = Buffer.alloc(MAX_LINE_BYTES + 5000, 0x20);
    long[0] = 0x7b;
    const text = Buffer.concat([Buffer.from('{"a":1}\n'), long, Buffer.from('\n{"b":2}\n')]);
    for (const size of [64 * 1024, MAX_LINE_BYTES + 100, 3 * 1024 * 1024]) {
      const { refused } = await receiveToFile(body(text, size), file, 1e9, 'blank');
      expect(refused).toEqual([
        { line: 2, id: null, reason: `the line is longer than ${MAX_LINE_BYTES} bytes` },
      ]);
      expect(readFileSync(file, 'utf8')).toBe('{"a":1}\n\n{"b":2}\n');
    }
  });
});
