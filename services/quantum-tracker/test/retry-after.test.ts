import { trackerEvents } from '../src/events';
import { MAX_RETRY_AFTER_MS, retryAfterMs } from '../src/providers/http';

describe('Retry-After', () => {
  const now = Date.parse('2026-12-02T12:00:00Z');
  it.each([
    ['120', 120_000],
    [' 5 ', 5000],
    ['0', 0],
    ['Wed, 02 Dec 2026 12:00:30 GMT', 30_000],
    ['Wed, 02 Dec 2026 11:00:00 GMT', 0],
    ['99999999999999', MAX_RETRY_AFTER_MS],
    ['Fri, 01 Jan 2100 00:00:00 GMT', MAX_RETRY_AFTER_MS],
  ])('reads %j as %d ms', (header, ms) => {
    expect(retryAfterMs(header, now)).toBe(ms);
  });

  it.each(['1.5', '1e3', '-1', '+5', '0x10', 'soon', ''])('is no delay for %j', (header) => {
    expect(retryAfterMs(header, now)).toBeUndefined();
  });

  it('always fits the tracker.sync.failed event, so a failed sync can be recorded', () => {
    for (const header of ['120', '99999999999999', 'Fri, 01 Jan 2100 00:00:00 GMT', '1.5']) {
      const data = {
        provider: 'ibm',
        kind: 'jobs',
        error: 'x',
        status: 429,
        consecutive_failures: 1,
        retry_after_ms: retryAfterMs(header, now) ?? null,
      };
      expect(() => trackerEvents.check('tracker.sync.failed', data)).not.toThrow();
    }
  });
});
