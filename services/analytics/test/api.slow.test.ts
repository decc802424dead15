import { DOMAINS, type DomainName } from '../src/domain/domains';
import { idOf, nouns, sampleRecord } from './fixtures';
import { call, type RunningDomain, startDomain } from './helpers';

describe.each(['test', 'generator', 'benchmark'] as DomainName[])('analytics %s domain', (domain) => {
  let d: RunningDomain;
  const { one, many } = nouns(domain);
  const id = idOf(domain);
  const spec = DOMAINS[domain];
  const ok = spec.successStatuses[0]!;

  beforeAll(async () => {
    d = await startDomain(domain);
    const records = [
      sampleRecord(domain, 'r1'),
      sampleRecord(domain, 'r2', { model: 'gpt2', hardware: 'cuda', duration_ms: 300, tags: ['gpu'] }),
      sampleRecord(domain, 'r3', {
        status: 'failed',
        error_message: 'OOM on device',
        started_at: '2026-11-21T10:00:00Z',
      }),
    ];
    const res = await call(`${d.base}/${many}`, { body: records });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ accepted: 3, rejected: 0, ids: ['r1', 'r2', 'r3'] });
  });
  afterAll(() => d.cleanup());

  test('one record comes back with its tags and child rows', async () => {
    const res = await call(`${d.base}/${one}/r1`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      [id]: 'r1',
      model: 'bert-base-uncased',
      status: ok,
      tags: ['cpu', 'nightly'],
    });
    for (const child of spec.children) expect(res.body[child.key]).toBeTruthy();
    if (domain !== 'benchmark')
      expect(res.body.steps.map((s: { step_no: number }) => s.step_no)).toEqual(
        domain === 'test' ? [1, 2] : [1],
      );
    expect((await call(`${d.base}/${one}/nope`)).status).toBe(404);
  });

  test('lists filter, sort and page', async () => {
    let res = await call(`${d.base}/${many}?model=gpt2`);
    expect(res.body.total).toBe(1);
    expect(res.body[many][0][id]).toBe('r2');
    res = await call(`${d.base}/${many}?status=failed`);
    expect(res.body[many].map((r: Record<string, string>) => r[id])).toEqual(['r3']);
    res = await call(`${d.base}/${many}?tag=gpu`);
    expect(res.body[many].map((r: Record<string, string>) => r[id])).toEqual(['r2']);
    res = await call(`${d.base}/${many}?since=2026-11-21T00:00:00Z`);
    expect(res.body.total).toBe(1);
    res = await call(`${d.base}/${many}?sort=duration_ms&order=asc&limit=2`);
    expect(res.body[many].map((r: Record<string, string>) => r[id])).toEqual(['r2', 'r1']);
    expect(res.body).toMatchObject({ total: 3, limit: 2, offset: 0 });
    res = await call(`${d.base}/${many}?limit=2&offset=2&sort=${id}&order=asc`);
    expect(res.body[many].map((r: Record<string, string>) => r[id])).toEqual(['r3']);
  });

  test('bad list parameters are 400, never SQL', async () => {
    for (const q of [
      'limit=100000',
      'limit=0',
      'offset=-1',
      'sort=model;DROP TABLE x',
      'sort=nope',
      'order=sideways',
      'since=yesterday',
    ]) {
      const res = await call(`${d.base}/${many}?${q}`);
      expect(res.status).toBe(400);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
    }
    expect((await call(`${d.base}/${many}`)).body.total).toBe(3);
  });

  test('bad records are refused with the field named, and nothing is loaded', async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ ...sampleRecord(domain, 'x1'), favourite_colour: 'blue' }, /favourite_colour/],
      [{ ...sampleRecord(domain, 'x2'), duration_ms: 'fast' }, /duration_ms/],
      [{ ...sampleRecord(domain, 'x3'), status: 'exploded' }, /status/],
      [{ ...sampleRecord(domain, 'x4'), model: undefined }, /model/],
      [{ ...sampleRecord(domain, 'x5'), started_at: 'last tuesday' }, /started_at/],
      [{ ...sampleRecord(domain, 'x6'), [id]: '../../etc/passwd\u0000' }, new RegExp(id)],
      [{ ...sampleRecord(domain, 'x7'), tags: 'nightly' }, /tags/],
      [{ ...sampleRecord(domain, 'x8'), metrics: [{ name: 'm' }] }, /metrics/],
    ];
    for (const [body, field] of cases) {
      const res = await call(`${d.base}/${many}`, { body });
      expect(res.status).toBe(400);
      expect(res.body.detail).toMatch(field);
    }
    expect((await call(`${d.base}/${many}`, { raw: '{"model":', type: 'application/json' })).status).toBe(
      400,
    );
    expect((await call(`${d.base}/${many}`)).body.total).toBe(3);
  });

  test('a duplicate id is a 409 and the whole request is rolled back', async () => {
    const res = await call(`${d.base}/${many}`, {
      body: [sampleRecord(domain, 'fresh'), sampleRecord(domain, 'r1')],
    });
    expect(res.status).toBe(409);
    expect(res.body.errors[0]).toMatchObject({ line: 2, id: 'r1' });
    expect((await call(`${d.base}/${one}/fresh`)).status).toBe(404);
  });

  test('model and hardware stats, model summary, performance and stats are computed from the rows', async () => {
    const models = (await call(`${d.base}/models/stats`)).body.models;
    const bert = models.find((m: { model: string }) => m.model === 'bert-base-uncased');
    expect(bert).toMatchObject({ total: 2, succeeded: 1, failed: 1, success_rate: 0.5 });
    const hardware = (await call(`${d.base}/hardware/stats`)).body.hardware;
    expect(hardware.map((h: { hardware: string; total: number }) => [h.hardware, h.total])).toEqual([
      ['cpu', 2],
      ['cuda', 1],
    ]);
    const summary = (await call(`${d.base}/models/gpt2`)).body;
    expect(summary).toMatchObject({ model: 'gpt2', domain, total: 1, success_rate: 1 });
    expect(summary[`recent_${many}`]).toHaveLength(1);
    const none = (await call(`${d.base}/models/${encodeURIComponent('never seen')}`)).body;
    expect(none).toMatchObject({ total: 0, success_rate: null });
    const perf = (await call(`${d.base}/performance?model=bert-base-uncased&days=3650`)).body;
    expect(perf.metric).toBe(spec.primaryMetric);
    expect(perf.by_model_hardware).toHaveLength(1);
    expect(perf.by_model_hardware[0].total).toBe(2);
    expect(perf.daily.map((x: { day: string }) => x.day)).toEqual(['2026-11-20', '2026-11-21']);
    const stats = (await call(`${d.base}/stats`)).body;
    expect(stats).toMatchObject({ domain, [`total_${many}`]: 3, models: 2, hardware_platforms: 2 });
    expect(stats.by_status).toEqual({ [ok]: 2, failed: 1 });
  });

  test('search binds its input: model, tags, status and free text', async () => {
    const search = (body: object) => call(`${d.base}/search`, { body });
    expect((await search({ query: 'gpt' })).body.total).toBe(1);
    expect((await search({ query: 'oom on' })).body.results[0][id]).toBe('r3');
    // ids match whole, not in part
    expect((await search({ query: 'r2' })).body.results.map((r: Record<string, string>) => r[id])).toEqual([
      'r2',
    ]);
    expect((await search({ tags: ['nightly'], status: 'failed' })).body.total).toBe(1);
    expect((await search({ query: "' OR 1=1 --" })).body.total).toBe(0);
    expect((await search({ query: '%' })).body.total).toBe(0);
    expect((await search({ query: '_' })).body.total).toBe(0);
    expect((await call(`${d.base}/search?q=bert&limit=1`, { method: 'POST' })).body).toMatchObject({
      total: 2,
      limit: 1,
    });
    expect((await search({ query: 'x'.repeat(500) })).status).toBe(400);
    expect((await search({ nonsense: 1 })).status).toBe(400);
    expect((await search({ limit: 5000 })).status).toBe(400);
  });

  test('exports stream as JSON (whole database), CSV and Parquet', async () => {
    let res = await call(`${d.base}/export`, { method: 'POST' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-disposition')).toContain('attachment');
    expect(res.body[spec.table]).toHaveLength(3);
    expect(res.body[spec.tagsTable].length).toBeGreaterThan(0);
    res = await call(`${d.base}/export?format=csv&model=gpt2`, { method: 'POST' });
    const lines = res.text.trim().split('\n');
    expect(lines[0]!.split(',')[0]).toBe(id);
    expect(lines).toHaveLength(2);
    const parquet = await fetch(`${d.base}/export?format=parquet&table=${spec.tagsTable}`, {
      method: 'POST',
    });
    const bytes = Buffer.from(await parquet.arrayBuffer());
    expect(bytes.subarray(0, 4).toString()).toBe('PAR1');
    expect((await call(`${d.base}/export?table=users;--`, { method: 'POST' })).status).toBe(400);
    expect((await call(`${d.base}/export?format=xlsx`, { method: 'POST' })).status).toBe(400);
  });

  test('batches: created with records, listed, completed, and deleted with every child row', async () => {
    const res = await call(`${d.base}/batches`, {
      body: {
        batch_id: 'b1',
        name: 'nightly',
        status: 'running',
        [many]: [sampleRecord(domain, 'b1-1'), sampleRecord(domain, 'b1-2')],
      },
    });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ batch_id: 'b1', accepted: 2 });
    const list = (await call(`${d.base}/batches`)).body;
    expect(list.batches[0]).toMatchObject({ batch_id: 'b1', [`${many}_count`]: 2, status: 'running' });
    const patched = await call(`${d.base}/batch/b1`, { method: 'PATCH', body: { status: 'completed' } });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ status: 'completed', summary: { total: 2 } });
    expect((await call(`${d.base}/batch/b1`, { method: 'PATCH', body: { status: 'exploded' } })).status).toBe(
      400,
    );
    const batch = (await call(`${d.base}/batch/b1`)).body;
    expect(batch[many].map((r: Record<string, string>) => r[id]).sort()).toEqual(['b1-1', 'b1-2']);

    const del = await call(`${d.base}/batch/b1`, { method: 'DELETE' });
    expect(del.body).toMatchObject({ batch_id: 'b1', deleted: 2 });
    expect((await call(`${d.base}/batch/b1`)).status).toBe(404);
    expect((await call(`${d.base}/${one}/b1-1`)).status).toBe(404);
    for (const table of [spec.tagsTable, ...spec.children.map((c) => c.table)]) {
      const [row] = await d.domain.db.query<{ n: number }>(
        `SELECT count(*)::INTEGER AS n FROM ${table} WHERE ${id} LIKE 'b1-%'`,
      );
      expect(row!.n).toBe(0);
    }
    expect((await call(`${d.base}/batch/b1`, { method: 'DELETE' })).status).toBe(404);
  });

  test('deleting a record removes its tags and child rows', async () => {
    await call(`${d.base}/${many}`, { body: sampleRecord(domain, 'gone') });
    expect((await call(`${d.base}/${one}/gone`, { method: 'DELETE' })).status).toBe(200);
    expect((await call(`${d.base}/${one}/gone`)).status).toBe(404);
    for (const table of [spec.tagsTable, ...spec.children.map((c) => c.table)]) {
      const [row] = await d.domain.db.query<{ n: number }>(
        `SELECT count(*)::INTEGER AS n FROM ${table} WHERE ${id} = 'gone'`,
      );
      expect(row!.n).toBe(0);
    }
    expect((await call(`${d.base}/${one}/gone`, { method: 'DELETE' })).status).toBe(404);
  });

  test('the OpenAPI document lists the seed paths', async () => {
    const doc = (await call(`${d.url}/openapi.json`)).body;
    const paths = Object.keys(doc.paths);
    for (const p of [
      `/${many}`,
      '/batches',
      '/models/stats',
      `/${one}/{id}`,
      '/batch/{id}',
      '/performance',
      '/search',
      '/export',
    ]) {
      expect(paths).toContain(`/api/${domain}/db${p}`);
    }
  });
});
