import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { MOUNTED, SERVICES, toPublicPath, toServicePath } from '../src';

const root = path.resolve(__dirname, '../../..');
const read = (file: string) => readFileSync(path.join(root, file), 'utf8');
type ComposeService = { command?: string[]; environment?: Record<string, string> };
const compose = parse(read('docker-compose.yml'), { merge: true }) as {
  services: Record<string, ComposeService>;
};

describe('the service registry', () => {
  it('names every service once, with its own port and variable prefix', () => {
    for (const key of ['id', 'port', 'envPrefix'] as const)
      expect(new Set(SERVICES.map((s) => s[key])).size).toBe(SERVICES.length);
    expect(SERVICES.at(-1)!.id).toBe('gateway');
    for (const s of SERVICES) expect(readFileSync(path.join(root, s.dir, 'package.json'))).toBeTruthy();
  });

  it('gives mounts that never overlap and map paths both ways', () => {
    for (const a of MOUNTED)
      for (const b of MOUNTED)
        if (a !== b) expect(`${b.mount.prefix}/`.startsWith(`${a.mount.prefix}/`)).toBe(false);
    for (const s of MOUNTED) {
      for (const rest of ['/x', '/x/y?q=1']) {
        const inside = toServicePath(s.mount, rest);
        expect(toPublicPath(s.mount, inside)).toBe(`${s.mount.prefix}${rest}`);
      }
    }
    const jobs = MOUNTED.find((s) => s.id === 'job-worker')!.mount;
    expect(toServicePath(jobs, '/')).toBe('/jobs');
    // The mount's own path with a query (GET /api/jobs?status=error) is the service's list.
    expect(toServicePath(jobs, '/?status=error&limit=5')).toBe('/jobs?status=error&limit=5');
    expect(toServicePath(jobs, '/x?y=/')).toBe('/jobs/x?y=/');
    expect(toPublicPath(jobs, '/jobsx')).toBeUndefined();
    expect(toPublicPath(jobs, '/health')).toBeUndefined();
  });

  it('agrees with docker-compose.yml: one service each, its port, its variables at the gateway', () => {
    const qlab = Object.entries(compose.services).filter(([, s]) => s.command?.[0] === 'node');
    expect(qlab.map(([name]) => name).sort()).toEqual(SERVICES.map((s) => s.id).sort());
    const gateway = compose.services.gateway!.environment!;
    for (const s of SERVICES) {
      const c = compose.services[s.id]!;
      expect(c.command).toContain(`${s.dir}/dist/main.js`);
      expect(c.environment?.PORT).toBe(String(s.port));
      for (const [k, v] of Object.entries('env' in s ? s.env : {})) expect(c.environment?.[k]).toBe(v);
      if ('mount' in s) {
        expect(gateway[`${s.envPrefix}_URL`]).toBe(`http://${s.id}:${s.port}`);
        expect(gateway[`${s.envPrefix}_TOKEN`]).toBeTruthy();
      }
    }
  });

  it('agrees with the README port list and the gateway README mount table', () => {
    const listed = [...read('README.md').matchAll(/^ {2}([a-z-]+) +http:\/\/127\.0\.0\.1:(\d+) {2}\(docs/gm)];
    expect(listed.map((m) => [m[1], Number(m[2])])).toEqual(SERVICES.map((s) => [s.id, s.port]));
    const mounts = read('gateway/README.md');
    for (const s of MOUNTED) {
      const prefix = s.mount.prefix.replace(/\/(test|generator|benchmark)$/, '/{test,generator,benchmark}');
      expect(mounts).toContain(`| \`${prefix}`);
    }
  });
});
