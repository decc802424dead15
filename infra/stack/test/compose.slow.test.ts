import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { STACK_SERVICES } from '../src/services';

const root = path.resolve(__dirname, '../../..');
const compose = parse(readFileSync(path.join(root, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
  services: Record<string, Record<string, unknown>>;
  volumes: Record<string, unknown>;
};

type Service = {
  build?: { dockerfile?: string };
  image?: string;
  command?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  healthcheck?: { test?: string[] };
  depends_on?: Record<string, { condition: string }>;
  ports?: string[];
  deploy?: { replicas?: number | string };
};

/** Stateless on PostgreSQL (+ S3): run as replicas, with no volume of their own to share. */
const REPLICATED = ['calibration-store', 'chunked-upload', 'job-worker', 'quantum-tracker'];

describe('docker-compose.yml', () => {
  it('runs PostgreSQL and Mosquitto as real services with health checks', () => {
    for (const name of ['postgres', 'mosquitto']) {
      const s = compose.services[name] as Service;
      expect(s.image).toBeTruthy();
      expect(s.healthcheck?.test).toBeDefined();
      expect(s.volumes?.length).toBeGreaterThan(0);
    }
  });

  it.each(STACK_SERVICES.map((s) => [s.name, s]))('has a complete entry for %s', (name, service) => {
    const s = compose.services[name] as Service | undefined;
    expect(s).toBeDefined();
    expect(s!.build?.dockerfile).toBe('infra/Dockerfile');
    expect(s!.command?.join(' ')).toContain(`${service.dir}/dist/main.js`);
    for (const [key, value] of Object.entries(service.env ?? {})) expect(s!.environment?.[key]).toBe(value);
    for (const key of ['HOST', 'PORT', 'DATA_DIR', 'MQTT_URL']) expect(s!.environment?.[key]).toBeTruthy();
    expect(s!.environment!.MQTT_URL).toBe('mqtt://mosquitto:1883');
    if (REPLICATED.includes(name)) {
      // Replicas would share a named volume, and each clears its temp folder at start.
      expect(s!.volumes).toBeUndefined();
      expect(String(s!.deploy?.replicas)).toMatch(/^\$\{[A-Z_]+_REPLICAS:-2\}$/);
    } else {
      const dataVolume = s!.volumes?.find((v) => v.endsWith(':/data'));
      expect(dataVolume).toBeDefined();
      expect(compose.volumes).toHaveProperty(dataVolume!.split(':')[0]!);
      expect(s!.deploy).toBeUndefined();
    }
    expect(s!.healthcheck?.test?.join(' ')).toContain('/health');
    expect(s!.depends_on?.postgres?.condition).toBe('service_healthy');
    expect(s!.depends_on?.mosquitto?.condition).toBe('service_healthy');
    // Nothing but the gateway is published at all.
    if (name === 'gateway') expect(s!.ports).toEqual([`${'$'}{GATEWAY_PUBLISH:-8080}:8080`]);
    else expect(s!.ports).toBeUndefined();
  });

  it('keeps bytes in S3, gateway keys in PostgreSQL and rate limits in Redis', () => {
    for (const name of ['s3', 'redis']) {
      const s = compose.services[name] as Service;
      expect(s.image).toBeTruthy();
      expect(s.healthcheck?.test).toBeDefined();
    }
    const store = (compose.services['calibration-store'] as Service).environment!;
    expect(store.BLOB_STORE_URL).toMatch(/^s3:\/\/qlab\//);
    expect(store.AWS_ENDPOINT_URL_S3).toBe('http://s3:9000');
    expect(store.S3_FORCE_PATH_STYLE).toBe('true');
    expect((compose.services['calibration-store'] as Service).depends_on?.['s3-bucket']?.condition).toBe(
      'service_completed_successfully',
    );
    const gateway = compose.services.gateway as Service;
    expect(gateway.environment!.GATEWAY_DB_URL).toMatch(/^postgresql:\/\/.*schema=gateway$/);
    expect(gateway.environment!.REDIS_URL).toBe('redis://redis:6379');
    expect(gateway.depends_on?.redis?.condition).toBe('service_healthy');
  });

  it('builds a multi-stage, non-root image with production dependencies only', () => {
    const dockerfile = readFileSync(path.join(root, 'infra/Dockerfile'), 'utf8');
    expect(dockerfile.match(/^FROM /gm)?.length).toBeGreaterThanOrEqual(2);
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toContain('pnpm install --frozen-lockfile --prod');
  });

  it('configures Mosquitto to persist and to cap queues on purpose', () => {
    const conf = readFileSync(path.join(root, 'infra/mosquitto/mosquitto.conf'), 'utf8');
    expect(conf).toMatch(/^persistence true$/m);
    expect(conf).toMatch(/^max_queued_messages \d+$/m);
  });

  it('passes `docker-compose config -q` where docker-compose is installed', () => {
    const which = spawnSync('sh', ['-c', 'command -v docker-compose']);
    if (which.status !== 0) {
      process.stdout.write(
        '[skip] docker-compose config: docker-compose is not installed (CI installs it)\n',
      );
      return;
    }
    const r = spawnSync(
      'docker-compose',
      ['--env-file', 'infra/compose.env.example', '-f', 'docker-compose.yml', 'config', '-q'],
      { cwd: root, encoding: 'utf8' },
    );
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    // Without the tokens it refuses, naming the variable.
    const bare = spawnSync('docker-compose', ['-f', 'docker-compose.yml', 'config', '-q'], {
      cwd: root,
      encoding: 'utf8',
      env: { PATH: process.env.PATH },
    });
    expect(bare.status).not.toBe(0);
    expect(bare.stderr).toMatch(/set [A-Z0-9_]+_(TOKEN|KEY_ID|ACCESS_KEY) in \.env/);
  });

  it('requires every service token (VAR:?) and gives each service the one the gateway sends', () => {
    const raw = readFileSync(path.join(root, 'docker-compose.yml'), 'utf8');
    const gateway = (compose.services.gateway as Service).environment!;
    for (const s of STACK_SERVICES.filter((x) => x.tokenEnv)) {
      const own = (compose.services[s.name] as Service).environment![s.tokenEnv!]!;
      expect([s.name, own]).toEqual([s.name, expect.stringMatching(/^\$\{[A-Z_]+:\?.+\}$/)]);
      const peer = gateway[`${s.name.toUpperCase().replace(/-/g, '_')}_TOKEN`];
      expect([s.name, peer]).toEqual([s.name, own]);
    }
    // Optional tokens are only the providers' (IBM_QUANTUM_TOKEN), never a service's.
    const optional = [...raw.matchAll(/([A-Z_]+_TOKEN): \$\{[A-Z_]+:-\}/g)].map((m) => m[1]);
    expect(optional).toEqual(['IBM_QUANTUM_TOKEN']);
    const example = readFileSync(path.join(root, 'infra/compose.env.example'), 'utf8');
    for (const v of raw.matchAll(/\$\{([A-Z_]+):\?/g)) expect(example).toContain(`${v[1]}=`);
  });
});
