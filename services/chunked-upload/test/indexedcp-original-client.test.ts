import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { type CloudEvent, type EmbeddedBroker, startEmbeddedBroker, subscribeEvents } from '@qlab/events';
import { waitFor } from '@qlab/testkit';
import type { PathMode } from '../src/domain/path-modes';
import { KEY, type RunningUploads, startUploads, walk } from './helpers';

/**
 * What the original IndexedCP client (mieweb/indexedcp lib/client.js, uploadChunk) puts on the
 * wire, written from its code: one POST per chunk, in order, awaiting each; the file name as it
 * was typed (`./myfile.txt`); no total, no checksum, no upload id and no end marker.
 */
async function sendLikeTheOriginal(
  url: string,
  typedName: string | undefined,
  chunks: Buffer[],
  firstIndex = 0,
): Promise<{ status: number; body: Record<string, unknown> }[]> {
  const answers = [];
  for (const [i, data] of chunks.entries()) {
    const headers: Record<string, string> = {
      'Content-Type': 'application/octet-stream',
      'X-Chunk-Index': String(firstIndex + i),
      Authorization: `Bearer ${KEY}`,
    };
    if (typedName !== undefined) headers['X-File-Name'] = typedName;
    const res = await fetch(`${url}/upload`, { method: 'POST', headers, body: data });
    answers.push({ status: res.status, body: (await res.json()) as Record<string, unknown> });
  }
  return answers;
}

describe('chunked-upload with the original IndexedCP client (no total, no end marker)', () => {
  let broker: EmbeddedBroker;
  let up: RunningUploads | undefined;
  let t = 1_767_225_600_000;
  const events: CloudEvent[] = [];
  let closeSub: () => Promise<void>;
  const start = async (pathMode: PathMode, extra: { windowsSafeNames?: boolean } = {}) => {
    up = await startUploads({ pathMode, broker, now: () => t, idleCompleteAfterMs: 30_000, ...extra });
    return up;
  };
  const completedFor = (clientFilename: string) =>
    events.filter(
      (e) =>
        e.type === 'upload.completed' &&
        (e.data as { clientFilename: string }).clientFilename === clientFilename,
    );

  beforeAll(async () => {
    broker = await startEmbeddedBroker({ port: 0 });
    const sub = await subscribeEvents({
      mqttUrl: broker.url,
      clientId: 'original-client-test',
      clean: true,
      topics: ['qlab/chunked-upload/#'],
      onEvent: (e) => {
        events.push(e);
      },
    });
    closeSub = () => sub.close();
  });
  afterAll(async () => {
    await closeSub();
    await broker.close();
  });
  afterEach(async () => {
    await up?.close();
    up = undefined;
    events.length = 0;
  });

  it('strips directories in sanitize mode and completes once the client has been quiet', async () => {
    const s = await start('sanitize');
    const parts = [randomBytes(4096), randomBytes(4096), randomBytes(17)];
    const answers = await sendLikeTheOriginal(s.url, './myfile.txt', parts);
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
    expect(answers[0]!.body).toMatchObject({
      message: 'Chunk received',
      actualFilename: 'myfile.txt',
      chunkIndex: 0,
      clientFilename: './myfile.txt',
    });
    await sendLikeTheOriginal(s.url, 'reports/2024/data.csv', [Buffer.from('a,b\n')]);

    // Not yet idle: nothing is complete.
    t += 29_000;
    expect(await s.service.sweepIdle()).toBe(0);
    t += 2_000;
    expect(await s.service.sweepIdle()).toBe(2);
    expect(walk(s.uploadDir).sort()).toEqual(['data.csv', 'myfile.txt']);
    expect(readFileSync(path.join(s.uploadDir, 'myfile.txt')).equals(Buffer.concat(parts))).toBe(true);
    await waitFor(
      () => completedFor('./myfile.txt').length === 1 && completedFor('reports/2024/data.csv').length === 1,
    );
    expect(completedFor('./myfile.txt')[0]!.data).toMatchObject({ filename: 'myfile.txt', size: 8209 });
    expect(await s.service.sweepIdle()).toBe(0); // once
  });

  it('makes the same name sent again a new file of its own, ending the first at once', async () => {
    const s = await start('sanitize');
    const first = [randomBytes(100), randomBytes(100)];
    const second = [randomBytes(60)];
    await sendLikeTheOriginal(s.url, 'log.txt', first);
    t += 1_000;
    const again = await sendLikeTheOriginal(s.url, 'log.txt', second);
    expect(again[0]!.body.actualFilename).toBe(`log_${t}.txt`);
    // The first upload ended when the new chunk 0 came, not after the idle time.
    await waitFor(() => completedFor('log.txt').length === 1);
    expect(readFileSync(path.join(s.uploadDir, 'log.txt')).equals(Buffer.concat(first))).toBe(true);
    t += 31_000;
    await s.service.sweepIdle();
    await waitFor(() => completedFor('log.txt').length === 2);
    expect(readFileSync(path.join(s.uploadDir, `log_${t - 31_000}.txt`)).equals(second[0]!)).toBe(true);
  });

  it('never answers 409 for a path sent again in allow-paths mode', async () => {
    const s = await start('allow-paths');
    for (let round = 0; round < 3; round++) {
      t += 10;
      const answers = await sendLikeTheOriginal(s.url, 'runs/r1/out.csv', [Buffer.from(`round ${round}`)]);
      expect(answers[0]!.status).toBe(200);
    }
    t += 31_000;
    await s.service.sweepIdle();
    const files = walk(s.uploadDir).sort();
    expect(files).toHaveLength(3);
    expect(readFileSync(path.join(s.uploadDir, 'runs/r1/out.csv'), 'utf8')).toBe('round 0');
    await waitFor(() => completedFor('runs/r1/out.csv').length === 3);
  });

  it('tells a chunk that comes after its upload ended to start again, and changes nothing', async () => {
    const s = await start('sanitize');
    await sendLikeTheOriginal(s.url, 'slow.bin', [Buffer.from('one')]);
    t += 31_000;
    await s.service.sweepIdle();
    const [late] = await sendLikeTheOriginal(s.url, 'slow.bin', [Buffer.from('two')], 1);
    expect(late!.status).toBe(409);
    expect(late!.body).toMatchObject({ code: 'UPLOAD_ALREADY_COMPLETE' });
    expect(String(late!.body.detail)).toContain('UPLOAD_IDLE_COMPLETE_AFTER');
    expect(readFileSync(path.join(s.uploadDir, 'slow.bin'), 'utf8')).toBe('one');
    expect(walk(s.uploadDir)).toEqual(['slow.bin']);
  });

  it('waits for a missing chunk instead of completing a file with a hole, and drops it if abandoned', async () => {
    const s = await start('sanitize');
    await sendLikeTheOriginal(s.url, 'gap.bin', [Buffer.from('AAA')]);
    await sendLikeTheOriginal(s.url, 'gap.bin', [Buffer.from('CCC')], 2); // chunk 1 is being retried
    t += 31_000;
    expect(await s.service.sweepIdle()).toBe(0);
    // It arrives late: the file is whole and completes after the next quiet spell.
    await sendLikeTheOriginal(s.url, 'gap.bin', [Buffer.from('BBB')], 1);
    t += 31_000;
    expect(await s.service.sweepIdle()).toBe(1);
    expect(readFileSync(path.join(s.uploadDir, 'gap.bin'), 'utf8')).toBe('AAABBBCCC');

    // A hole that is never filled: a new chunk 0 of the name ends it, and its partial file goes.
    await sendLikeTheOriginal(s.url, 'hole.bin', [Buffer.from('AAA')]);
    await sendLikeTheOriginal(s.url, 'hole.bin', [Buffer.from('CCC')], 2);
    t += 1_000;
    const fresh = await sendLikeTheOriginal(s.url, 'hole.bin', [Buffer.from('new')]);
    expect(fresh[0]!.body.actualFilename).toBe('hole.bin');
    expect(readFileSync(path.join(s.uploadDir, 'hole.bin'), 'utf8')).toBe('new');
    expect(completedFor('hole.bin')).toHaveLength(0);
  });

  it('names a chunk without X-File-Name as the original does', async () => {
    let s = await start('sanitize');
    const [a] = await sendLikeTheOriginal(s.url, undefined, [Buffer.from('x')]);
    expect(a!.body).toMatchObject({
      actualFilename: 'uploaded_file.txt',
      clientFilename: 'uploaded_file.txt',
    });
    await s.close();
    s = await start('ignore');
    const [b] = await sendLikeTheOriginal(s.url, '', [Buffer.from('x')]);
    expect(b!.body.actualFilename).toMatch(/^\d{13}_[0-9a-f]{8}_uploaded_file\.txt$/);
  });

  it('names as the original in ignore mode, with a millisecond timestamp', async () => {
    const s = await start('ignore');
    const [a] = await sendLikeTheOriginal(s.url, 'folder/file (copy) [2].txt', [Buffer.from('x')]);
    expect(a!.body.actualFilename).toMatch(new RegExp(`^${t}_[0-9a-f]{8}_folder_file--copy---2-\\.txt$`));
  });

  it('takes CON on POSIX and refuses it only with the Windows-safe option', async () => {
    let s = await start('sanitize');
    expect((await sendLikeTheOriginal(s.url, 'CON', [Buffer.from('x')]))[0]!.status).toBe(200);
    await s.close();
    s = await start('sanitize', { windowsSafeNames: true });
    const [refused] = await sendLikeTheOriginal(s.url, 'CON', [Buffer.from('x')]);
    expect(refused!.status).toBe(400);
    expect(String(refused!.body.detail)).toContain('UPLOAD_WINDOWS_SAFE_NAMES');
    expect(walk(s.uploadDir)).toEqual([]);
  });

  it.each(['ignore', 'sanitize', 'allow-paths'] as const)(
    'refuses a percent-encoded traversal in %s mode and writes nothing',
    async (mode) => {
      const s = await start(mode);
      const [r] = await sendLikeTheOriginal(s.url, '..%2F..%2Fetc%2Fpasswd', [Buffer.from('x')]);
      expect(r!.status).toBe(400);
      expect(r!.body.code).toBe('PATH_REFUSED');
      expect(walk(s.uploadDir)).toEqual([]);
    },
  );
});
