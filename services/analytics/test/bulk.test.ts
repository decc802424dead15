import { sampleRecord } from './fixtures';
import { call, ndjson, type RunningDomain, startDomain } from './helpers';

describe('bulk loads (benchmark domain)', () => {
  let d: RunningDomain;
  beforeEach(async () => {
    d = await startDomain('benchmark', { maxBulkBytes: 256 * 1024 });
  });
  afterEach(() => d.cleanup());
  const count = async () => (await call(`${d.base}/runs`)).body.total as number;

  test('clean NDJSON loads every row with child rows and tags', async () => {
    const rows = Array.from({ length: 200 }, (_, i) =>
      sampleRecord('benchmark', `b${i}`, { model: `m${i % 4}` }),
    );
    const res = await call(`${d.base}/runs/bulk`, { raw: ndjson(rows) });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ accepted: 200, rejected: 0, errors: [] });
    expect(await count()).toBe(200);
    const one = (await call(`${d.base}/run/b7`)).body;
    expect(one).toMatchObject({
      model: 'm3',
      tags: ['cpu', 'nightly'],
      model_metrics: { parameter_count: 110000000 },
    });
    expect(one.hardware_metrics[0]).toMatchObject({ device_name: 'Xeon', cpu_percent: 87.5 });
  });

  test('lines after a blank, blanked or CRLF-ended line keep their numbers', async () => {
    const row = (id: string, status = 'completed') => JSON.stringify({ run_id: id, model: 'bert', status });
    const cases: [string | Buffer, { line: number; id: string | null }[]][] = [
      // Valid JSON throughout: read_json would skip the blank line and number b one too low.
      [`${row('a')}\n\n${row('b', 'exploded')}\n`, [{ line: 3, id: 'b' }]],
      [`${row('a')}\n  \n${row('b', 'exploded')}\n`, [{ line: 3, id: 'b' }]],
      [
        Buffer.concat([
          Buffer.from(`${row('a')}\n{"model":"`),
          Buffer.from([0xff]),
          Buffer.from(`"}\n${row('b', 'exploded')}\n`),
        ]),
        [
          { line: 2, id: null },
          { line: 3, id: 'b' },
        ],
      ],
      // CRLF and a malformed line: DuckDB's line reader failed on the \r (a 500).
      [
        `${row('a')}\r\nnot json\r\n${row('b', 'exploded')}\r\n`,
        [
          { line: 2, id: null },
          { line: 3, id: 'b' },
        ],
      ],
    ];
    // A tab-only line is blank; a record exactly as long as the limit loads on either path.
    cases.push([`${row('a')}\n\t\n${row('b', 'exploded')}\n`, [{ line: 3, id: 'b' }]]);
    for (const [raw, errors] of cases) {
      const res = await call(`${d.base}/runs/bulk`, { raw });
      expect(res.status).toBe(201);
      expect(
        res.body.errors.map((e: { line: number; id: string | null }) => ({ line: e.line, id: e.id })),
      ).toEqual(errors);
      expect((await call(`${d.base}/run/a`, { method: 'DELETE' })).status).toBe(200);
    }
  });

  test('a malformed line in the middle is reported by line and the rest load', async () => {
    const good = (i: number) =>
      JSON.stringify({ run_id: `g${i}`, model: 'bert', status: 'completed', latency_ms: i });
    const body = [
      good(1),
      good(2),
      '{"run_id": "broken", "model": ',
      good(3),
      '',
      JSON.stringify({ run_id: 'bad-type', model: 'bert', status: 'completed', latency_ms: 'fast' }),
      JSON.stringify({ run_id: 'bad-status', model: 'bert', status: 'exploded' }),
      JSON.stringify({ run_id: 'no-model', status: 'completed' }),
      JSON.stringify({ run_id: 'extra', model: 'bert', status: 'completed', colour: 'red' }),
      '[1, 2, 3]',
      good(1),
      good(4),
    ].join('\n');
    const res = await call(`${d.base}/runs/bulk`, { raw: body });
    expect(res.status).toBe(201);
    expect(res.body.accepted).toBe(3);
    expect(res.body.errors).toEqual(
      [
        { line: 1, id: 'g1', reason: 'run_id appears more than once in this load' },
        { line: 3, id: null, reason: 'not a JSON object' },
        { line: 6, id: 'bad-type', reason: 'latency_ms: not a valid double' },
        { line: 7, id: 'bad-status', reason: 'status must be one of running, completed, failed' },
        { line: 8, id: 'no-model', reason: 'model is required' },
        { line: 9, id: 'extra', reason: 'unknown fields: colour' },
        { line: 10, id: null, reason: 'not a JSON object' },
        { line: 11, id: 'g1', reason: 'run_id appears more than once in this load' },
      ].map((e) => expect.objectContaining(e)),
    );
    // g1 appeared twice: both copies are refused, so no run is ambiguous.
    expect(res.body.rejected).toBe(8);
    expect(await count()).toBe(3);
  });

  test('strict mode loads nothing when any row is rejected', async () => {
    const body = ndjson([
      { model: 'a', status: 'completed' },
      { model: 'b', status: 'nope' },
    ]);
    const res = await call(`${d.base}/runs/bulk?strict=true`, { raw: body });
    expect(res.status).toBe(422);
    expect(res.body).toMatchObject({ accepted: 0, rejected: 1 });
    expect(await count()).toBe(0);
  });

  test('rows whose id already exists are rejected, not duplicated', async () => {
    await call(`${d.base}/runs`, { body: sampleRecord('benchmark', 'taken') });
    const res = await call(`${d.base}/runs/bulk`, {
      raw: ndjson([{ run_id: 'taken', model: 'x', status: 'completed' }]),
    });
    expect(res.body).toMatchObject({
      accepted: 0,
      rejected: 1,
      errors: [{ line: 1, reason: 'run_id already exists' }],
    });
    expect(await count()).toBe(1);
  });

  test('an unknown key in clean NDJSON refuses the file with 400', async () => {
    const res = await call(`${d.base}/runs/bulk`, {
      raw: ndjson([{ model: 'a', status: 'completed', "x'); DROP TABLE benchmark_runs; --": 1 }]),
    });
    expect(res.status).toBe(400);
    expect(res.body.unknown_columns).toHaveLength(1);
    expect(await count()).toBe(0);
  });

  test('CSV loads with semicolon tags, reports bad rows and refuses unknown columns', async () => {
    const csv = [
      'run_id,model,hardware,status,latency_ms,tags',
      'c1,bert,cpu,completed,12.5,nightly;cpu',
      'c2,bert,cpu,completed,not-a-number,',
      'c3,gpt2,cuda,failed,,gpu',
      'c4,too,many,columns,1,2,3,4',
      'c5,gpt2,cuda,running,,',
      'c6,gpt2,cuda,running,abc,',
    ].join('\n');
    const res = await call(`${d.base}/runs/bulk`, { raw: csv, type: 'text/csv' });
    expect(res.status).toBe(201);
    expect(res.body.accepted).toBe(3);
    expect(res.body.errors.map((e: { line: number }) => e.line)).toEqual([3, 5, 7]);
    expect((await call(`${d.base}/run/c1`)).body.tags).toEqual(['cpu', 'nightly']);
    const unknown = await call(`${d.base}/runs/bulk`, {
      raw: 'model,status,secret\nx,completed,1\n',
      type: 'text/csv',
    });
    expect(unknown.status).toBe(400);
    expect(unknown.body.unknown_columns).toEqual(['secret']);
  });

  test('oversized bodies are 413, other media types 415, and no temp file is left behind', async () => {
    const big = ndjson(Array.from({ length: 10_000 }, (_, i) => ({ model: `m${i}`, status: 'completed' })));
    expect((await call(`${d.base}/runs/bulk`, { raw: big })).status).toBe(413);
    // Chunked (no Content-Length) is cut off while streaming.
    const chunked = await fetch(`${d.base}/runs/bulk`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-ndjson' },
      body: new ReadableStream({
        start(c) {
          c.enqueue(new TextEncoder().encode(big));
          c.close();
        },
      }),
      duplex: 'half',
    } as RequestInit);
    expect(chunked.status).toBe(413);
    expect((await call(`${d.base}/runs/bulk`, { raw: '<xml/>', type: 'application/xml' })).status).toBe(415);
    const { readdirSync } = await import('node:fs');
    expect(readdirSync(`${d.dir}/benchmark.tmp`)).toEqual([]);
    expect(await count()).toBe(0);
  });
});
