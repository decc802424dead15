import path from 'node:path';
import { ConfigError } from '@qlab/kit';
import { loadAnalyticsConfig } from '../src/config';

describe('analytics config', () => {
  test('the domain is required and chooses the default port and file', () => {
    expect(() => loadAnalyticsConfig([], {})).toThrow(ConfigError);
    const test = loadAnalyticsConfig(['--domain', 'test'], { DATA_DIR: '/srv/qlab' })!;
    expect(test).toMatchObject({
      domain: 'test',
      port: 8200,
      dbPath: path.join('/srv/qlab/analytics/test.duckdb'),
    });
    expect(loadAnalyticsConfig([], { ANALYTICS_DOMAIN: 'benchmark' })!.port).toBe(8202);
    expect(loadAnalyticsConfig([], { ANALYTICS_DOMAIN: 'generator', PORT: '0' })!.port).toBe(0);
  });

  test('bad values are named', () => {
    expect(() => loadAnalyticsConfig(['--domain', 'finance'], {})).toThrow(/ANALYTICS_DOMAIN/);
    expect(() =>
      loadAnalyticsConfig([], { ANALYTICS_DOMAIN: 'test', ANALYTICS_QUERY_TIMEOUT: 'soon' }),
    ).toThrow(/ANALYTICS_QUERY_TIMEOUT/);
    expect(() => loadAnalyticsConfig(['--bogus'], {})).toThrow(ConfigError);
    for (const bad of ['lots', '25%', '4 G', '-1GB', "1GB'; --"])
      expect(() =>
        loadAnalyticsConfig([], { ANALYTICS_DOMAIN: 'test', ANALYTICS_MEMORY_LIMIT: bad }),
      ).toThrow(/ANALYTICS_MEMORY_LIMIT/);
    expect(loadAnalyticsConfig([], { ANALYTICS_DOMAIN: 'test' })!.memoryLimit).toBe('4GB');
    expect(
      loadAnalyticsConfig([], { ANALYTICS_DOMAIN: 'test', ANALYTICS_MEMORY_LIMIT: '512MiB' })!.memoryLimit,
    ).toBe('512MiB');
  });

  test("seed 003's flags: --db-path, and --server accepted", () => {
    const c = loadAnalyticsConfig(['--domain', 'test', '--server', '--db-path', 'dbs/test_db.duckdb'], {})!;
    expect(c.dbPath).toBe(path.resolve('dbs/test_db.duckdb'));
    // The flag wins over the environment.
    expect(
      loadAnalyticsConfig(['--db-path', '/a.duckdb'], {
        ANALYTICS_DOMAIN: 'test',
        ANALYTICS_DB_PATH: '/b.duckdb',
      })!.dbPath,
    ).toBe('/a.duckdb');
  });

  test('env settings are read', () => {
    const c = loadAnalyticsConfig([], {
      ANALYTICS_DOMAIN: 'test',
      ANALYTICS_DB_PATH: '/tmp/x.duckdb',
      ANALYTICS_API_TOKEN: 't',
      ANALYTICS_QUERY_TIMEOUT: '2s',
      MQTT_URL: 'mqtt://b:1883',
    })!;
    expect(c).toMatchObject({
      dbPath: '/tmp/x.duckdb',
      apiToken: 't',
      queryTimeoutMs: 2000,
      mqttUrl: 'mqtt://b:1883',
    });
  });
});
