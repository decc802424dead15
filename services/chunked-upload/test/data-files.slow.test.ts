import { createHash, randomBytes } from 'node:crypto';
import { constants, readFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { tempDir } from '@qlab/testkit';
import { DataFiles, TooManyBytes } from '../src/storage/data-files';
import { PipelinedWriter } from '../src/storage/pipelined-writer';
import { writeVerified } from '../src/storage/verified-write';
import { openDirectProbe, WRITE_BUFFER_BYTES, WriteBuffers } from '../src/storage/write-buffers';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Yields `data` in pieces of the given sizes (cycled), like socket reads of uneven length. */
async function* pieces(data: Buffer, sizes: number[], failAfter?: number): AsyncGenerator<Buffer> {
  let at = 0;
  for (let i = 0; at < data.length; i++) {
    if (failAfter !== undefined && at >= failAfter) throw new Error('client went away');
    const n = sizes[i % sizes.length]!;
    yield data.subarray(at, at + n);
    at += n;
  }
}

/** Pushes a whole body through a writer, as DataFiles.writeAt does. */
async function writeAll(writer: PipelinedWriter, body: AsyncIterable<Buffer>): Promise<void> {
  try {
    for await (const piece of body) await writer.push(piece);
    await writer.finish();
  } finally {
    await writer.release();
  }
}

describe('DataFiles.writeAt', () => {
  const dirs: Array<{ cleanup(): void }> = [];
  const opened: DataFiles[] = [];
  afterAll(async () => {
    for (const f of opened) await f.close();
    for (const d of dirs) d.cleanup();
  });

  async function filesIn(directIo: boolean): Promise<DataFiles> {
    const data = tempDir('qlab-df-');
    dirs.push(data);
    const files = new DataFiles(data.dir, path.join(data.dir, 'files'), directIo);
    await files.init();
    opened.push(files);
    return files;
  }

  it('uses O_DIRECT when the data dir takes it, and not when turned off', async () => {
    const probeDir = tempDir('qlab-df-probe-');
    dirs.push(probeDir);
    const probe = await openDirectProbe(path.join(probeDir.dir, 'p'));
    await probe?.close();
    if (!probe) console.log('[skip] the temp dir refuses O_DIRECT; only the buffered path is checked');
    expect((await filesIn(true)).directWrites).toBe(probe !== undefined);
    expect((await filesIn(false)).directWrites).toBe(false);
  });

  const layouts: Array<[string, () => Promise<DataFiles>]> = [
    ['direct', () => filesIn(true)],
    ['buffered (turned off)', () => filesIn(false)],
  ];

  describe.each(layouts)('%s', (_name, make) => {
    it('writes bodies of odd sizes at unaligned offsets, byte for byte', async () => {
      const files = await make();
      // Spans several write buffers; the pieces and the split points are deliberately unaligned.
      const data = randomBytes(2 * WRITE_BUFFER_BYTES + 123_457);
      const splits = [0, 1, 4095, 4097 + 3 * 4096, WRITE_BUFFER_BYTES + 17, data.length];
      for (const where of ['staging/s.bin', 'files/f.bin']) {
        await files.createEmpty(where);
        for (let i = 0; i + 1 < splits.length; i++) {
          const part = data.subarray(splits[i], splits[i + 1]);
          const hash = createHash('sha256');
          const result = await files.writeAt(
            where,
            splits[i]!,
            pieces(part, [65_536, 1, 7_001, 300_000]),
            Infinity,
            [hash],
          );
          expect(result).toEqual({ bytes: part.length, interrupted: false });
          expect(hash.digest('hex')).toBe(sha(part));
        }
        expect(sha(readFileSync(files.abs(where)))).toBe(sha(data));
      }
    });

    it('keeps what arrived when the body stops early', async () => {
      const files = await make();
      const data = randomBytes(WRITE_BUFFER_BYTES + 50_000);
      await files.createEmpty('staging/cut.bin');
      const result = await files.writeAt('staging/cut.bin', 0, pieces(data, [100_000], 1_000_000), Infinity);
      expect(result).toEqual({ bytes: 1_000_000, interrupted: true });
      expect(sha(readFileSync(files.abs('staging/cut.bin')))).toBe(sha(data.subarray(0, 1_000_000)));
    });

    it('refuses bytes past the limit', async () => {
      const files = await make();
      await files.createEmpty('staging/big.bin');
      await expect(
        files.writeAt('staging/big.bin', 0, pieces(randomBytes(10_000), [4_000]), 9_999),
      ).rejects.toBeInstanceOf(TooManyBytes);
    });

    it('writes concurrent uploads to their own files', async () => {
      const files = await make();
      const bodies = Array.from({ length: 4 }, (_, i) => randomBytes(WRITE_BUFFER_BYTES / 2 + i * 4099));
      await Promise.all(bodies.map((_, i) => files.createEmpty(`staging/c${i}.bin`)));
      await Promise.all(
        bodies.map((b, i) => files.writeAt(`staging/c${i}.bin`, 0, pieces(b, [65_536]), Infinity)),
      );
      bodies.forEach((b, i) => {
        expect(sha(readFileSync(files.abs(`staging/c${i}.bin`)))).toBe(sha(b));
      });
    });
  });

  it('falls back to buffered writes when a direct write is refused', async () => {
    const dir = tempDir('qlab-df-fallback-');
    dirs.push(dir);
    const file = path.join(dir.dir, 'f.bin');
    const buffered = await open(file, 'w+');
    const direct = await open(file, constants.O_WRONLY | constants.O_DIRECT);
    // Buffers cut one byte off any alignment: the kernel refuses them for O_DIRECT with EINVAL.
    const misaligned = new WriteBuffers(undefined);
    misaligned.take = async () => Buffer.allocUnsafeSlow(WRITE_BUFFER_BYTES + 1).subarray(1);
    const data = randomBytes(3 * WRITE_BUFFER_BYTES + 5);
    const writer = new PipelinedWriter(buffered, direct, 0, misaligned);
    try {
      await writeAll(writer, pieces(data, [1_000_000]));
    } finally {
      await direct.close();
      await buffered.close();
    }
    expect(writer.failed).toBe(false);
    expect(sha(readFileSync(file))).toBe(sha(data));
  });

  it.each([0, 1])('writes through the page cache past the process budget of buffers (%i)', async (budget) => {
    const dir = tempDir('qlab-df-budget-');
    dirs.push(dir);
    const buffers = new WriteBuffers(undefined, budget);
    const bodies = Array.from({ length: 3 }, (_, i) => randomBytes(2 * WRITE_BUFFER_BYTES + 1000 * i + 1));
    await Promise.all(
      bodies.map(async (body, i) => {
        const handle = await open(path.join(dir.dir, `${i}.bin`), 'w+');
        try {
          await writeAll(new PipelinedWriter(handle, undefined, 0, buffers), pieces(body, [65_536, 333]));
        } finally {
          await handle.close();
        }
      }),
    );
    bodies.forEach((body, i) => {
      expect(sha(readFileSync(path.join(dir.dir, `${i}.bin`)))).toBe(sha(body));
    });
    // The pool never held more than the budget: taking all it has gives exactly that many.
    const held: Buffer[] = [];
    for (let b = await buffers.take(); b; b = await buffers.take()) held.push(b);
    expect(held).toHaveLength(budget);
  });
});

describe('writeVerified', () => {
  const data = tempDir('qlab-vw-');
  const files = new DataFiles(data.dir, path.join(data.dir, 'files'), false);
  beforeAll(() => files.init());
  afterAll(async () => {
    await files.close();
    data.cleanup();
  });

  const refuse = {
    tooMany: () => new Error('too many'),
    aborted: () => new Error('aborted'),
    mismatch: (actual: string) => new Error(`mismatch ${actual.slice(0, 8)}`),
  };
  const first = Buffer.from('kept bytes ');
  const second = randomBytes(10_000);

  /** A file holding `first`, and a verified write of `second` after it. */
  async function writeSecond(opts: {
    expected?: string;
    failAfter?: number;
    room?: number;
    mustBeWhole?: boolean;
  }) {
    const where = `staging/${randomBytes(4).toString('hex')}.bin`;
    await files.createEmpty(where);
    await files.writeAt(where, 0, pieces(first, [first.length]), Infinity);
    const outcome = writeVerified(files, {
      dataPath: where,
      offset: first.length,
      body: pieces(second, [1000], opts.failAfter),
      room: opts.room ?? Infinity,
      hash: { algorithm: 'sha256', encoding: 'hex', expected: opts.expected },
      mustBeWhole: opts.mustBeWhole ?? true,
      undo: () => files.truncateTo(where, first.length),
      refuse,
    });
    return { where, outcome };
  }
  const contents = (where: string) => readFileSync(files.abs(where));

  it('keeps a whole body that matches, and answers its digest', async () => {
    const { where, outcome } = await writeSecond({ expected: sha(second) });
    await expect(outcome).resolves.toEqual({ bytes: second.length, digest: sha(second) });
    expect(contents(where)).toEqual(Buffer.concat([first, second]));
  });

  it.each([
    ['a digest mismatch', { expected: sha(first) }, /mismatch/],
    ['a body that stops early', { failAfter: 5000 }, /aborted/],
    ['a body past its room', { room: 4000 }, /too many/],
  ])('takes back %s and leaves the file as it was', async (_name, opts, error) => {
    const { where, outcome } = await writeSecond(opts);
    await expect(outcome).rejects.toThrow(error);
    expect(contents(where)).toEqual(first);
  });

  it('keeps what arrived of an early-stopping body when it need not be whole', async () => {
    const { where, outcome } = await writeSecond({ failAfter: 5000, mustBeWhole: false });
    await expect(outcome).resolves.toMatchObject({ bytes: 5000 });
    expect(contents(where)).toEqual(Buffer.concat([first, second.subarray(0, 5000)]));
  });
});
