import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from '@qlab/testkit';
import { z } from 'zod';
import { applySeedAliases, baseEnv, ConfigError, env, loadConfig, type SeedAlias } from '../src';

const schema = z.object({
  ...baseEnv(5050),
  TOKEN: env.optionalString(),
  MAX_BYTES: env.int(100, 1),
  DEBUG: env.bool(false),
});

describe('loadConfig', () => {
  it('applies defaults', () => {
    const c = loadConfig(schema, {});
    expect(c).toMatchObject({
      HOST: '127.0.0.1',
      PORT: 5050,
      DATA_DIR: './data',
      MAX_BYTES: 100,
      DEBUG: false,
    });
    expect(c.TOKEN).toBeUndefined();
  });

  it('names every bad variable in one error', () => {
    let error: unknown;
    try {
      loadConfig(schema, { PORT: 'eighty', MAX_BYTES: '0', DEBUG: 'maybe', LOG_LEVEL: 'loud' });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems.join('\n');
    for (const key of ['PORT', 'MAX_BYTES', 'DEBUG', 'LOG_LEVEL']) expect(problems).toContain(key);
    expect(problems).toContain('"eighty"');
  });

  it('reads VAR_FILE secrets, and VAR wins over VAR_FILE', () => {
    const tmp = tempDir();
    const file = path.join(tmp.dir, 'token');
    writeFileSync(file, 's3cret\n');
    expect(loadConfig(schema, { TOKEN_FILE: file }).TOKEN).toBe('s3cret');
    expect(loadConfig(schema, { TOKEN_FILE: file, TOKEN: 'direct' }).TOKEN).toBe('direct');
    expect(() => loadConfig(schema, { TOKEN_FILE: path.join(tmp.dir, 'missing') })).toThrow(ConfigError);
    tmp.cleanup();
  });

  it('parses booleans strictly', () => {
    expect(loadConfig(schema, { DEBUG: '1' }).DEBUG).toBe(true);
    expect(loadConfig(schema, { DEBUG: 'off' }).DEBUG).toBe(false);
  });
});

describe('applySeedAliases', () => {
  const aliases: SeedAlias[] = [
    ['DATABASE_URL', 'JOBS_DB_URL'],
    ['API_PORT', 'PORT'],
  ];
  it('takes a seed variable when the qlab one is unset or empty', () => {
    const { merged, used } = applySeedAliases(
      { DATABASE_URL: 'postgres://seed', PORT: '', API_PORT: '9000' },
      aliases,
    );
    expect(merged.JOBS_DB_URL).toBe('postgres://seed');
    expect(merged.PORT).toBe('9000');
    expect(used).toEqual(['DATABASE_URL → JOBS_DB_URL', 'API_PORT → PORT']);
  });
  it('lets the qlab name win, also given as a _FILE secret', () => {
    const { merged, used } = applySeedAliases(
      {
        DATABASE_URL: 'postgres://seed',
        JOBS_DB_URL_FILE: '/run/secrets/db',
        API_PORT: '9000',
        PORT: '8000',
      },
      aliases,
    );
    expect(merged.JOBS_DB_URL).toBeUndefined();
    expect(merged.PORT).toBe('8000');
    expect(used).toEqual([]);
  });
});

describe('env.duration, the one convention for time settings', () => {
  const d = z.object({
    LEASE: env.duration('30s', { min: 1000, max: 86_400_000 }),
    KEEP: env.duration('0', { allowZero: true }),
  });
  it.each([
    ['1500ms', 1500],
    ['90s', 90_000],
    ['30m', 1_800_000],
    ['24h', 86_400_000],
    ['2000', 2000],
  ])('reads %s as %d ms', (value, ms) => {
    expect(loadConfig(d, { LEASE: value }).LEASE).toBe(ms);
  });
  it('has defaults in the same form, and zero only where allowed', () => {
    expect(loadConfig(d, {})).toEqual({ LEASE: 30_000, KEEP: 0 });
    expect(() => loadConfig(d, { LEASE: '0' })).toThrow(/LEASE.*duration/);
  });
  it.each(['500ms', '2d', '-5s', '1.5s', '10 minutes', 'soon'])('refuses LEASE=%s', (value) => {
    expect(() => loadConfig(d, { LEASE: value })).toThrow(/LEASE/);
  });
});
