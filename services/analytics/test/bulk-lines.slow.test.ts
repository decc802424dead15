import { MAX_LINE_BYTES } from '../src/domain/loading';
import { call, type RunningDomain, startDomain } from './helpers';

/**
 * A clean NDJSON file is numbered by the rows' places in the staged table (loader.ts), which
 * holds only while DuckDB keeps the file's order through its parallel read: a file big enough
 * to be read in several chunks (80 MB; read_json's buffers are 32 MB here), with refused rows
 * far apart, must name their exact lines. With preserve_insertion_order off this fails.
 */
describe('bulk load line numbers (benchmark domain)', () => {
  let d: RunningDomain;
  beforeAll(async () => {
    d = await startDomain('benchmark', { maxBulkBytes: 256 * 1024 * 1024 });
  });
  afterAll(() => d.cleanup());

  test('rows refused deep in a big clean file are named by their lines', async () => {
    const LINES = 1_600_000;
    const lines: string[] = [];
    for (let i = 1; i <= LINES; i++) {
      const row: Record<string, unknown> = { run_id: `l${i}`, model: `m${i % 7}`, status: 'completed' };
      if (i === 123_457) row.status = 'exploded';
      if (i === 250_001) row.run_id = 'l5';
      if (i === LINES) row.latency_ms = 'fast';
      lines.push(JSON.stringify(row));
    }
    const res = await call(`${d.base}/runs/bulk`, { raw: `${lines.join('\n')}\n` });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ accepted: LINES - 4, rejected: 4 });
    expect(res.body.errors).toEqual([
      { line: 5, id: 'l5', reason: 'run_id appears more than once in this load' },
      { line: 123_457, id: 'l123457', reason: 'status must be one of running, completed, failed' },
      { line: 250_001, id: 'l5', reason: 'run_id appears more than once in this load' },
      { line: LINES, id: `l${LINES}`, reason: 'latency_ms: not a valid double' },
    ]);
    expect((await call(`${d.base}/run/l1599999`)).body.model).toBe(`m${1_599_999 % 7}`);
    expect((await call(`${d.base}/run/l5`)).status).toBe(404);
  });

  test('a record exactly as long as the limit loads, also in a file numbered line by line', async () => {
    const record = Buffer.alloc(MAX_LINE_BYTES, 0x20);
    record.write('{"run_id":"max","model":"m","status":"completed"', 0);
    record[MAX_LINE_BYTES - 1] = 0x7d;
    const raw = Buffer.concat([
      Buffer.from('\n'),
      record,
      Buffer.from('\n{"run_id":"bad","model":"m","status":"x"}\n'),
    ]);
    const res = await call(`${d.base}/runs/bulk`, { raw });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ accepted: 1, rejected: 1, errors: [{ line: 3, id: 'bad' }] });
  });

  test('unknown fields refuse the file whether or not a blank line sends it line by line', async () => {
    for (const raw of [
      '{"run_id":"u1","model":"m","status":"completed"}\n{"run_id":"u2","model":"m","status":"completed","zz":1}\n',
      '{"run_id":"u1","model":"m","status":"completed"}\n\n{"run_id":"u2","model":"m","status":"completed","zz":1}\n',
    ]) {
      const res = await call(`${d.base}/runs/bulk`, { raw });
      expect(res.status).toBe(400);
      expect(res.body.unknown_columns).toEqual(['zz']);
    }
  });
});
