import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError } from '@qlab/kit';
import { tempDir } from '@qlab/testkit';
import { loadCalibrationConfig } from '../src/config';

describe('calibration store configuration', () => {
  const tmp = tempDir();
  const tokenFile = path.join(tmp.dir, 'server.json');
  const base = { QIBO_SERVER_CONFIG: tokenFile, DATA_DIR: tmp.dir };
  afterAll(() => tmp.cleanup());

  it('has the seed defaults', () => {
    const c = loadCalibrationConfig([], base)!;
    expect(c).toMatchObject({
      port: 5050,
      host: '127.0.0.1',
      maxUploadBytes: 500 * 1024 * 1024,
      logLevel: 'info',
    });
    expect(c.apiToken).toBeUndefined();
    expect(c.dbUrl).toBe(path.join(tmp.dir, 'calibration-store', 'qibo.db'));
  });

  it('takes --host, --port and --api-token, and remembers the token', () => {
    const c = loadCalibrationConfig(
      ['--host', '0.0.0.0', '--port', '6060', '--api-token', 'secret-token'],
      base,
    )!;
    expect(c).toMatchObject({
      host: '0.0.0.0',
      port: 6060,
      apiToken: 'secret-token',
      adminToken: 'secret-token',
    });
    expect(JSON.parse(readFileSync(tokenFile, 'utf8'))).toEqual({ api_token: 'secret-token' });
    expect(statSync(tokenFile).mode & 0o777).toBe(0o600);
    // Next start without the flag uses the remembered token; env and flags win over it.
    expect(loadCalibrationConfig([], base)!.apiToken).toBe('secret-token');
    expect(loadCalibrationConfig([], { ...base, QIBO_API_TOKEN: 'from-env' })!.apiToken).toBe('from-env');
  });

  it('reads QIBO_* variables', () => {
    const c = loadCalibrationConfig([], {
      ...base,
      QIBO_DB_URI: 'sqlite:///qibo.db',
      QIBO_MAX_UPLOAD_BYTES: '1000',
      QIBO_DEBUG: '1',
      QIBO_ADMIN_TOKEN: 'adm',
    })!;
    expect(c).toMatchObject({
      dbUrl: 'sqlite:///qibo.db',
      maxUploadBytes: 1000,
      logLevel: 'debug',
      adminToken: 'adm',
    });
  });

  it('names every bad setting and unknown flag', () => {
    expect(() => loadCalibrationConfig(['--colour'], base)).toThrow(ConfigError);
    try {
      loadCalibrationConfig(['--port', 'x'], { ...base, QIBO_MAX_UPLOAD_BYTES: '-5', QIBO_DEBUG: 'perhaps' });
      throw new Error('expected a ConfigError');
    } catch (err) {
      const message = (err as Error).message;
      for (const key of ['PORT', 'QIBO_MAX_UPLOAD_BYTES', 'QIBO_DEBUG']) expect(message).toContain(key);
    }
    writeFileSync(tokenFile, '{not json');
    expect(() => loadCalibrationConfig([], base)).toThrow(/not valid JSON/);
  });

  it('returns nothing for --help', () => {
    expect(loadCalibrationConfig(['--help'], base)).toBeUndefined();
    expect(existsSync(tokenFile)).toBe(true);
  });
});
