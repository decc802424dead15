import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { closedPort, tempDir } from '@qlab/testkit';
import { type RunningStore, startStore } from 'calibration-store/testing';
import { runCli } from '../src/cli/program';

async function qlab(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, { out: (l) => out.push(l), err: (l) => err.push(l), progress: false });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('qlab CLI', () => {
  let store: RunningStore;
  const tmp = tempDir('qlab-cli-');
  const previousConfig = process.env.QIBO_CLIENT_CONFIG;
  const cwd = process.cwd();

  beforeAll(async () => {
    store = await startStore({ apiToken: 'tok' });
    process.env.QIBO_CLIENT_CONFIG = path.join(tmp.dir, 'client.json');
    mkdirSync(path.join(tmp.dir, 'run'), { recursive: true });
    writeFileSync(path.join(tmp.dir, 'run', 'meta.json'), '{"title":"rabi"}');
    writeFileSync(path.join(tmp.dir, 'runcard.yml'), 'actions: []\n');
  });
  afterAll(async () => {
    process.chdir(cwd);
    if (previousConfig === undefined) delete process.env.QIBO_CLIENT_CONFIG;
    else process.env.QIBO_CLIENT_CONFIG = previousConfig;
    await store.close();
    tmp.cleanup();
  });

  it('remembers the server, uploads, lists, and downloads with unpack', async () => {
    expect((await qlab('config', 'set-server', store.url, '--token', 'tok')).code).toBe(0);
    const shown = await qlab('config', 'show');
    expect(JSON.parse(shown.out)).toMatchObject({ server_url: store.url, api_token: '(set)' });

    const up = await qlab(
      'calibrations',
      'upload',
      '--hash-id',
      'abc',
      '--notes',
      'rabi run',
      path.join(tmp.dir, 'run'),
      path.join(tmp.dir, 'runcard.yml'),
    );
    expect(up).toMatchObject({ code: 0 });
    expect(up.out).toMatch(/^uploaded calibration \d+ at /);

    const list = await qlab('calibrations', 'list');
    expect(list.out).toContain('abc');
    expect(list.out).toContain('rabi run');
    const json = await qlab('cal', 'list', '--json', '--hash-id', 'abc');
    expect(JSON.parse(json.out)[0]).toMatchObject({ hashID: 'abc' });
    expect(JSON.parse((await qlab('calibrations', 'latest')).out)).toMatchObject({ hashID: 'abc' });

    const zip = path.join(tmp.dir, 'got.zip');
    const dl = await qlab(
      'calibrations',
      'download',
      'abc',
      '-o',
      zip,
      '--unpack',
      path.join(tmp.dir, 'out'),
    );
    expect(dl.code).toBe(0);
    expect(readFileSync(path.join(tmp.dir, 'out', 'run', 'meta.json'), 'utf8')).toBe('{"title":"rabi"}');
    const again = await qlab('calibrations', 'download', 'abc', '-o', zip);
    expect(again.code).toBe(1);
    expect(again.err).toContain('--force');
    expect((await qlab('calibrations', 'download', 'abc', '-o', zip, '--force')).code).toBe(0);

    process.chdir(tmp.dir);
    const named = await qlab('calibrations', 'download', 'abc');
    expect(named.code).toBe(0);
    expect(existsSync(path.join(tmp.dir, 'archive.zip'))).toBe(true);
    process.chdir(cwd);
  });

  it('handles results', async () => {
    expect(
      (await qlab('results', 'upload', '--hash-id', 'abc', '--name', 'rb', path.join(tmp.dir, 'runcard.yml')))
        .code,
    ).toBe(0);
    expect((await qlab('results', 'list', '--name', 'rb')).out).toContain('rb');
    const dl = await qlab('results', 'download', 'abc', 'rb', '-o', path.join(tmp.dir, 'rb.zip'));
    expect(dl.code).toBe(0);
    expect(
      (await qlab('results', 'download', 'abc', 'nope', '-o', path.join(tmp.dir, 'x.zip'))).err,
    ).toContain('404');
  });

  it('keeps run ids on results and sets, gets and lists best runs', async () => {
    const card = path.join(tmp.dir, 'runcard.yml');
    for (const run of ['run-1', 'run-2']) {
      expect(
        (await qlab('results', 'upload', '--hash-id', 'cal', '--name', 'rb', '--run-id', run, card)).code,
      ).toBe(0);
    }
    const listed = JSON.parse(
      (await qlab('results', 'list', '--hash-id', 'cal', '--run-id', 'run-1', '--json')).out,
    );
    expect(listed.map((i: { run_id: string }) => i.run_id)).toEqual(['run-1']);
    const missing = await qlab(
      'results',
      'download',
      'cal',
      'rb',
      '--run-id',
      'run-9',
      '-o',
      path.join(tmp.dir, 'r9.zip'),
    );
    expect(missing.code).toBe(1);
    expect(missing.err).toContain('404');

    expect((await qlab('bestruns', 'get')).err).toContain('no best run set');
    expect((await qlab('bestruns', 'list')).out).toBe('(none)');
    const set = await qlab('bestruns', 'set', 'cal', 'run-2');
    expect(set.code).toBe(0);
    expect(set.out).toContain('best run run-2 set for cal');
    await qlab('bestruns', 'set', 'cal', 'run-1');
    expect((await qlab('bestruns', 'get')).out).toMatch(/^cal {2}run-1 {2}\d{4}-/);
    const runs = JSON.parse((await qlab('bestruns', 'list', '--limit', '1', '--json')).out);
    expect(runs.map((r: { run_id: string }) => r.run_id)).toEqual(['run-1']);
    expect((await qlab('bestruns', 'list', '--limit', 'ten')).err).toContain('must be a whole number');
    // As upstream, the server clamps the limit to 1-100.
    expect(JSON.parse((await qlab('bestruns', 'list', '--limit', '0', '--json')).out)).toHaveLength(1);
  });

  it('explains a wrong token, a missing server and a bad command', async () => {
    const token = await qlab('--token', 'wrong', 'calibrations', 'list');
    expect(token.code).toBe(1);
    expect(token.err).toContain('refused the API token');
    const down = await qlab('--server', `http://127.0.0.1:${await closedPort()}`, 'calibrations', 'list');
    expect(down.code).toBe(1);
    expect(down.err).toContain('cannot reach the server');
    const missing = await qlab('calibrations', 'upload', path.join(tmp.dir, 'runcard.yml'));
    expect(missing.code).not.toBe(0);
    expect(missing.err).toContain('--hash-id');
    expect((await qlab('calibrations', 'upload', '--hash-id', 'x', '/no/such/file')).err).toContain(
      'no such file',
    );
  });

  it('runs as a command', () => {
    const tsx = path.resolve(__dirname, '../../../node_modules/.bin/tsx');
    const r = spawnSync(tsx, ['--conditions=@qlab/source', 'src/cli.ts', '--help'], {
      cwd: path.resolve(__dirname, '..'),
      encoding: 'utf8',
    });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('calibrations');
  });
});
