import { formatServiceLine } from '../src/format-log';

describe('formatServiceLine', () => {
  it('shortens pino lines and request logs', () => {
    const line = JSON.stringify({
      level: 30,
      time: '2026-11-22T03:42:46.813Z',
      service: 's',
      msg: 'listening',
      url: 'http://x',
    });
    expect(formatServiceLine('s', line)).toBe('[s] 03:42:46 INFO  listening url=http://x');
    const req = JSON.stringify({
      level: 30,
      time: '2026-11-22T03:42:46.813Z',
      req: { method: 'GET', url: '/health' },
      res: { status: 200 },
      responseTime: 3,
      msg: 'request completed',
    });
    expect(formatServiceLine('s', req)).toBe('[s] 03:42:46 INFO  GET /health 200 3ms');
  });

  it('passes other lines through and caps very long ones', () => {
    expect(formatServiceLine('s', 'plain text')).toBe('[s] plain text');
    expect(formatServiceLine('s', '42')).toBe('[s] 42');
    const long = JSON.stringify({ level: 50, msg: 'x'.repeat(1000) });
    expect(formatServiceLine('s', long).length).toBe(400);
  });
});
