import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError } from '@qlab/kit';
import { tempDir } from '@qlab/testkit';
import { loadGatewayConfig } from '../src/config';
import { readSeedFlags } from '../src/seed-flags';
import { type RunningGateway, startGateway } from './helpers';

describe("seed 003's unified_api_server flags and --config", () => {
  const tmp = tempDir('qlab-gw-flags-');
  afterAll(() => tmp.cleanup());
  const file = (name: string, body: unknown) => {
    const p = path.join(tmp.dir, name);
    writeFileSync(p, typeof body === 'string' ? body : JSON.stringify(body));
    return p;
  };

  test('the ports, as the seed documents them', () => {
    const f = readSeedFlags([
      '--gateway-port',
      '8080',
      '--test-api-port',
      '8000',
      '--generator-api-port',
      '8001',
      '--benchmark-api-port',
      '8002',
    ]);
    const c = loadGatewayConfig(f.env);
    expect(c.port).toBe(8080);
    const url = (id: string) => c.upstreams.find((u) => u.id === id)!.url;
    expect([url('analytics-test'), url('analytics-generator'), url('analytics-benchmark')]).toEqual([
      'http://127.0.0.1:8000',
      'http://127.0.0.1:8001',
      'http://127.0.0.1:8002',
    ]);
  });

  test('the seed’s JSON file: ports and hosts, disabled components, and what qlab runs elsewhere', () => {
    const f = readSeedFlags([
      '--config',
      file('seed.json', {
        test_api: {
          enabled: true,
          port: 8000,
          host: '0.0.0.0',
          module: 'm',
          args: ['--server', '--db-path', '/d/test.duckdb'],
        },
        generator_api: { enabled: false, port: 8001 },
        benchmark_api: { port: 8002, host: 'bench.lab' },
        gateway: { enabled: true, port: 9090, host: '0.0.0.0' },
      }),
      '--benchmark-api-port',
      '8102',
    ]);
    expect(f.env).toMatchObject({
      PORT: '9090',
      HOST: '0.0.0.0',
      ANALYTICS_TEST_URL: 'http://127.0.0.1:8000',
      // A flag wins over the file.
      ANALYTICS_BENCHMARK_URL: 'http://127.0.0.1:8102',
    });
    expect(f.disabled).toEqual(['analytics-generator']);
    expect(f.notes[0]).toContain('analytics --domain test --server --db-path /d/test.duckdb');
    expect(
      loadGatewayConfig(f.env, f.disabled).upstreams.find((u) => u.id === 'analytics-generator')!.disabled,
    ).toBe(true);
  });

  test('bad flags and files are named', () => {
    expect(() => readSeedFlags(['--gateway-port', 'eighty'])).toThrow('--gateway-port');
    expect(() => readSeedFlags(['--test-api-port', '70000'])).toThrow(ConfigError);
    expect(() => readSeedFlags(['--bogus'])).toThrow(ConfigError);
    expect(() => readSeedFlags(['--config', path.join(tmp.dir, 'missing.json')])).toThrow('--config');
    expect(() => readSeedFlags(['--config', file('bad.json', '{"test_api": ')])).toThrow('--config');
    expect(() => readSeedFlags(['--config', file('extra.json', { test_api: { prot: 1 } })])).toThrow('prot');
    expect(() => readSeedFlags(['--config', file('off.json', { gateway: { enabled: false } })])).toThrow(
      'gateway',
    );
    // Ports in decimal only; a host is a host, never a URL fragment pasted into one.
    for (const p of ['0x50', '1e3', ' 80', '0', '80.0'])
      expect(() => readSeedFlags(['--gateway-port', p])).toThrow('--gateway-port');
    for (const host of ['evil.example/x?', 'u:p@h', 'http://h', 'h:80', 'a b'])
      expect(() =>
        readSeedFlags(['--config', file('host.json', { test_api: { host, port: 8000 } })]),
      ).toThrow('host');
    expect(
      readSeedFlags(['--config', file('v6.json', { test_api: { host: '[::1]', port: 8000 } })]).env
        .ANALYTICS_TEST_URL,
    ).toBe('http://[::1]:8000');
    // A domain on the gateway's own port would be the gateway proxying to itself.
    expect(() => readSeedFlags(['--gateway-port', '8080', '--test-api-port', '8080'])).toThrow(
      "gateway's own port",
    );
    // Not a regular file, too big, or not JSON: named, and the text is never echoed.
    expect(() => readSeedFlags(['--config', '/dev/zero'])).toThrow('not a regular file');
    expect(() => readSeedFlags(['--config', file('big.json', 'x'.repeat(70_000))])).toThrow('64 KiB');
    let message = '';
    try {
      readSeedFlags(['--config', file('secret.json', 'qlab_SECRETKEY123')]);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain('not valid JSON');
    expect(message).not.toContain('SECRET');
  });

  test('a component turned off in the file answers 503 through the gateway', async () => {
    let gw: RunningGateway | undefined;
    try {
      gw = await startGateway({ keys: [['k'.repeat(20), ['read']]], disabled: ['analytics-generator'] });
      const res = await fetch(`${gw.url}/api/db/generator/tasks`, {
        headers: { 'X-API-Key': 'k'.repeat(20) },
      });
      expect(res.status).toBe(503);
      expect(((await res.json()) as { code: string }).code).toBe('SERVICE_DISABLED');
    } finally {
      await gw?.close();
    }
  });
});
