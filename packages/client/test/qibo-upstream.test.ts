import { readFileSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from '@qlab/testkit';
import { makeZip, type RunningStore, startStore } from 'calibration-store/testing';
import {
  calibrationsList,
  getBestNRuns,
  getBestRun,
  resultsDownload,
  resultsList,
  resultsUpload,
  setBestRun,
} from '../src';

/**
 * QIBO DB as it evolved after the seed (tanvirulz/nqch-QDB: 3d30621 created_at, 53d3ade
 * experiment_ID, dd6f7cc runID, 09dd8c2 best runs), from its server and client, as its later
 * clients use it. Written from their behaviour, not their code.
 */
describe('calibration-store answers QIBO DB clients after the first commit', () => {
  const tmp = tempDir('qlab-qibo-');
  let store: RunningStore;
  let zip: Buffer;
  beforeAll(async () => {
    store = await startStore();
    zip = readFileSync(await makeZip(path.join(tmp.dir, 'a.zip'), { 'p.json': '{"n":1}' }));
  });
  afterAll(async () => {
    await store.close();
    tmp.cleanup();
  });

  const post = (p: string, body: FormData | string, type?: string) =>
    fetch(`${store.url}${p}`, {
      method: 'POST',
      headers: type ? { 'content-type': type } : {},
      body,
    });
  const form = (fields: Record<string, string>, withArchive = true) => {
    const f = new FormData();
    for (const [k, v] of Object.entries(fields)) f.set(k, v);
    if (withArchive) f.set('archive', new Blob([zip]), 'a.zip');
    return f;
  };
  // biome-ignore lint/suspicious/noExplicitAny: the answers are read as a Python client reads them.
  const json = async (r: Response): Promise<any> => r.json();

  it('downloads answer created_at (and run_id for results), and empty notes are null', async () => {
    expect((await post('/calibrations/upload', form({ hashID: 'c1' }))).status).toBe(200);
    const cal = await json(
      await post('/calibrations/download', JSON.stringify({ hashID: 'c1' }), 'application/json'),
    );
    expect(cal).toMatchObject({ notes: null, filename: 'a.zip' });
    expect(cal.created_at).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
    expect(Buffer.from(cal.data_b64, 'base64').equals(zip)).toBe(true);
    // A urlencoded form and a multipart form work too ("json/form").
    const viaForm = await post('/calibrations/download', 'hashID=c1', 'application/x-www-form-urlencoded');
    expect((await json(viaForm)).created_at).toBe(cal.created_at);
    const viaMultipart = await post('/calibrations/download', form({ hashID: 'c1' }, false));
    expect((await json(viaMultipart)).created_at).toBe(cal.created_at);
    expect((await json(await fetch(`${store.url}/calibrations/list`))).items[0].notes).toBeNull();
  });

  it('results carry a run id: runID (or the older experimentID), listed, and filtered on download', async () => {
    const up = await json(
      await post('/results/upload', form({ hashID: 'c1', name: 'rb', runID: 'run-1', notes: 'first' })),
    );
    expect(up).toMatchObject({ status: 'ok', run_id: 'run-1' });
    expect(up.created_at).toBeDefined();
    await post('/results/upload', form({ hashID: 'c1', name: 'rb', experimentID: 'run-2' }));
    await post('/results/upload', form({ hashID: 'c1', name: 'rb', experiment_id: 'run-3' }));
    await post('/results/upload', form({ hashID: 'c1', name: 'rb' }));
    const list = await json(await fetch(`${store.url}/results/list?hashID=c1`));
    expect(list.items.map((i: { run_id: string | null }) => i.run_id)).toEqual([
      null,
      'run-3',
      'run-2',
      'run-1',
    ]);
    const dl = async (body: Record<string, string>) =>
      post('/results/download', JSON.stringify(body), 'application/json');
    const run1 = await json(await dl({ hashID: 'c1', name: 'rb', runID: 'run-1' }));
    expect(run1).toMatchObject({ run_id: 'run-1', notes: 'first' });
    expect((await json(await dl({ hashID: 'c1', name: 'rb' }))).run_id).toBeNull();
    // Another run's archive never stands in for an unknown one.
    const unknown = await dl({ hashID: 'c1', name: 'rb', runID: 'run-9' });
    expect(unknown.status).toBe(404);
    expect((await json(unknown)).error).toMatch(/not|no result/);
    expect((await fetch(`${store.url}/results/archive?hashID=c1&name=rb&runID=run-2`)).status).toBe(200);
    expect((await fetch(`${store.url}/results/archive?hashID=c1&name=rb&runID=run-9`)).status).toBe(404);
  });

  it("best runs: set (JSON, form, multipart), get the newest, list with the upstream's clamping", async () => {
    expect((await fetch(`${store.url}/bestruns/get`)).status).toBe(404);
    expect((await json(await fetch(`${store.url}/bestruns/get`))).error).toBe('no best run set');
    const missing = await post('/bestruns/set', JSON.stringify({ runID: 'r' }), 'application/json');
    expect(missing.status).toBe(400);
    expect((await json(missing)).error).toContain('calibrationHashID is required');
    expect(
      (await post('/bestruns/set', JSON.stringify({ calibrationHashID: 'c1' }), 'application/json')).status,
    ).toBe(400);
    const set = await json(
      await post(
        '/bestruns/set',
        JSON.stringify({ calibrationHashID: 'c1', runID: 'run-1' }),
        'application/json',
      ),
    );
    expect(set).toMatchObject({ status: 'ok', calibration_hash_id: 'c1', run_id: 'run-1' });
    expect(set.created_at).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
    await post('/bestruns/set', 'calibrationHashID=c1&runID=run-2', 'application/x-www-form-urlencoded');
    await post('/bestruns/set', form({ calibrationHashID: 'c2', runID: 'run-3' }, false));
    const got = await json(await fetch(`${store.url}/bestruns/get`));
    expect(got).toMatchObject({ status: 'ok', calibration_hash_id: 'c2', run_id: 'run-3' });
    const list = async (q: string) => json(await fetch(`${store.url}/bestruns/list${q}`));
    expect((await list('')).items.map((i: { run_id: string }) => i.run_id)).toEqual([
      'run-3',
      'run-2',
      'run-1',
    ]);
    expect((await list('?limit=1')).items).toHaveLength(1);
    expect((await list('?limit=0')).items).toHaveLength(1);
    expect((await list('?limit=-5')).items).toHaveLength(1);
    expect((await list('?limit=1000')).items).toHaveLength(3);
    const bad = await fetch(`${store.url}/bestruns/list?limit=ten`);
    expect(bad.status).toBe(400);
    expect((await json(bad)).error).toContain('limit must be an integer');
  });

  it('lists every item when no limit is given (the seed returned every row), and pages with one', async () => {
    // 1,200 rows straight into the table (all pointing at content that exists): more than a page.
    const existing = await store.knex('calibrations').first();
    const rows = Array.from({ length: 1200 }, (_, i) => ({
      hash_id: `bulk-${i}`,
      notes: '',
      filename: 'a.zip',
      size: existing.size,
      sha256: existing.sha256,
      created_at: 1_000_000 + i,
    }));
    for (let i = 0; i < rows.length; i += 200)
      await store.knex.batchInsert('calibrations', rows.slice(i, i + 200), 200);
    const all = await json(await fetch(`${store.url}/calibrations/list`));
    expect(all.items.length).toBe(1201);
    expect(all.total).toBe(1201);
    expect(all.items[1].hashID).toBe('bulk-1199');
    const page = await json(await fetch(`${store.url}/calibrations/list?limit=10&offset=5`));
    expect(page).toMatchObject({ total: 1201, limit: 10, offset: 5 });
    expect(page.items).toHaveLength(10);
    // The client's calibrationsList() goes through everything too.
    expect(
      (await calibrationsList({ serverUrl: store.url, configFile: path.join(tmp.dir, 'c.json') })).length,
    ).toBe(1201);
  });

  it('errors keep problem+json and carry the seed’s "error" member', async () => {
    const res = await post('/calibrations/download', JSON.stringify({}), 'application/json');
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
    const body = await json(res);
    expect(body).toMatchObject({ status: 400, code: 'INVALID_INPUT' });
    expect(typeof body.error).toBe('string');
    expect(body.error).toBe(body.detail);
  });

  it('the TypeScript client speaks all of it: runs, results_list(hashID), best runs', async () => {
    const c = { serverUrl: store.url, configFile: path.join(tmp.dir, 'c.json') };
    const file = path.join(tmp.dir, 'runcard.yml');
    require('node:fs').writeFileSync(file, 'nshots: 10\n');
    const up = await resultsUpload('c9', 'fit', 'client', [file], { ...c, runID: 'cr-1' });
    expect(up.run_id).toBe('cr-1');
    expect((await resultsList('c9', c)).map((r) => r.run_id)).toEqual(['cr-1']);
    expect((await resultsDownload('c9', 'fit', { ...c, runID: 'cr-1' })).run_id).toBe('cr-1');
    await expect(resultsDownload('c9', 'fit', { ...c, runID: 'nope' })).rejects.toThrow(/404/);
    expect(await setBestRun('c9', 'cr-1', c)).toMatchObject({ status: 'ok', run_id: 'cr-1' });
    expect(await getBestRun(c)).toMatchObject({ calibration_hash_id: 'c9', run_id: 'cr-1' });
    expect((await getBestNRuns(2, c)).map((r) => r.run_id)).toEqual(['cr-1', 'run-3']);
  });
});
