import { call, type RunningDomain, startDomain } from './helpers';

describe('analytics against hostile input', () => {
  let d: RunningDomain;
  beforeAll(async () => {
    d = await startDomain('benchmark');
  });
  afterAll(async () => d.cleanup());

  const total = async () => (await call(`${d.base}/runs`)).body.total as number;
  const bytes = (...parts: (string | number[])[]) =>
    Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : Buffer.from(p))));

  it('rejects an NDJSON line that is not UTF-8, names it, and loads the rest', async () => {
    const body = bytes(
      '{"run_id":"u1","model":"m","status":"completed"}\n',
      '{"run_id":"u2","model":"',
      [0xff, 0xfe, 0xc3],
      '","status":"completed"}\n',
      '{"run_id":"u3","model":"caf\u00e9","status":"failed"}\n',
    );
    const res = await call(`${d.base}/runs/bulk`, { raw: body });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ accepted: 2, rejected: 1 });
    expect(res.body.errors).toEqual([{ line: 2, id: null, reason: 'the line is not valid UTF-8' }]);
    expect((await call(`${d.base}/run/u3`)).body.model).toBe('caf\u00e9');
    // Strict: the bad line fails the whole load.
    const strict = await call(`${d.base}/runs/bulk?strict=true`, {
      raw: bytes('{"run_id":"s1","model":"m"}\n{"model":"', [0xc0, 0xaf], '"}\n'),
    });
    expect(strict.status).toBe(422);
    expect(await total()).toBe(2);
  });

  it('refuses a CSV body with a line that is not UTF-8, naming the line', async () => {
    const res = await call(`${d.base}/runs/bulk`, {
      type: 'text/csv',
      raw: bytes('run_id,model,status\nc1,m,completed\nc2,', [0xe9], ',failed\n'),
    });
    expect(res.status).toBe(400);
    expect(res.body.detail).toContain('line 3');
    expect(await total()).toBe(2);
  });

  it('refuses JSON bodies that are not UTF-8', async () => {
    const res = await call(`${d.base}/runs`, {
      type: 'application/json',
      raw: bytes('{"run_id":"j1","model":"', [0xff], '"}'),
    });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('INVALID_UTF8');
    expect(await total()).toBe(2);
  });

  it('exports CSV with formula cells defused, and as stored with raw=true', async () => {
    const formulas = ['=HYPERLINK("http://evil")', '+1+1', '-2+3', '@SUM(A1)', '\tx', '\rx'];
    const rows = formulas.map((f, i) => ({ run_id: `f${i}`, model: f, status: 'completed' }));
    expect((await call(`${d.base}/runs`, { body: rows })).status).toBe(201);
    const guarded = await call(`${d.base}/export?format=csv&status=completed`);
    expect(guarded.status).toBe(200);
    // No cell (quoted or not) starts with a formula character; \r cells are quoted, so split rows on \n only.
    const cells = guarded.text
      .split('\n')
      .slice(1)
      .flatMap((row) => row.split(','));
    expect(cells.filter((c) => /^"?[=+\-@\t\r]/.test(c))).toEqual([]);
    expect(guarded.text).toContain(`'=HYPERLINK(""http://evil"")`);
    expect(guarded.text).toContain("'@SUM(A1)");
    // Ordinary text that only starts with a digit, a dot, a slash or a colon is left alone.
    const plain = ['1.5b-model', '.npu', '/usr/model', ':tag', '<x>', '?q'];
    const rows2 = plain.map((m, i) => ({ run_id: `p${i}`, model: m, status: 'failed' }));
    expect((await call(`${d.base}/runs`, { body: rows2 })).status).toBe(201);
    const failed = (await call(`${d.base}/export?format=csv&status=failed`)).text;
    for (const m of plain) expect(failed).toContain(`,${m},`);
    const raw = await call(`${d.base}/export?format=csv&status=completed&raw=true`);
    expect(raw.text).toContain('"=HYPERLINK(""http://evil"")"');
    expect(raw.text).not.toContain("'@SUM");
  });

  it('refuses an NDJSON line nested too deep instead of handing it to DuckDB', async () => {
    const deep = `{"run_id":"deep1","model":"m","status":"completed","tags":${'['.repeat(100_000)}${']'.repeat(100_000)}}`;
    const res = await call(`${d.base}/runs/bulk`, {
      raw: `${deep}\n{"run_id":"ok1","model":"m","status":"completed"}\n`,
    });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ accepted: 1, rejected: 1 });
    expect(res.body.errors[0]).toMatchObject({ line: 1, reason: 'the line nests deeper than 64 levels' });
  });

  it('loads CSV with CRLF or mixed line ends, and refuses a repeated header as a 400', async () => {
    const crlf = await call(`${d.base}/runs/bulk`, {
      type: 'text/csv',
      raw: 'run_id,model,status\r\ncr1,m,completed\r\ncr2,m,failed\ncr3,m,failed\r\n',
    });
    expect(crlf.status).toBe(201);
    expect(crlf.body).toMatchObject({ accepted: 3, rejected: 0 });
    const dup = await call(`${d.base}/runs/bulk`, {
      type: 'text/csv',
      raw: 'run_id,model,status,run_id\nx,m,failed,y\n',
    });
    expect(dup.status).toBe(400);
  });

  it('applies the JSON API id and tag rules to bulk loads', async () => {
    const res = await call(`${d.base}/runs/bulk`, {
      raw: [
        `{"run_id":"bad id/../x y'","model":"m","status":"completed"}`,
        `{"run_id":"c1","batch_id":"b c","model":"m","status":"completed"}`,
        `{"run_id":"c2","model":"m","status":"completed","tags":["${'t'.repeat(201)}"]}`,
        `{"run_id":"c3","model":"m","status":"completed","tags":[[["deep"]]]}`,
        `{"run_id":"good-1","model":"m","status":"completed","tags":["a","b"]}`,
      ].join('\n'),
    });
    expect(res.body).toMatchObject({ accepted: 1, rejected: 4 });
  });
});
