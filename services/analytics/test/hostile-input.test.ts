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
    const raw = await call(`${d.base}/export?format=csv&status=completed&raw=true`);
    expect(raw.text).toContain('"=HYPERLINK(""http://evil"")"');
    expect(raw.text).not.toContain("'@SUM");
  });
});
