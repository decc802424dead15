import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { HOSTILE_FILE_NAMES } from './hostile-values';
import { ANALYTICS_DOMAINS, type HostileStack, KEYS, type ServiceName, serviceToken } from './stack';

/**
 * What must hold after every input: counts unchanged by refused requests, no temp or staging
 * leftovers, and no file outside the folders a service may write.
 */
export class Invariants {
  private readonly knownJobs = new Set<string>();
  private escapesBefore = new Set<string>();

  constructor(private readonly stack: HostileStack) {}

  private async getJson(service: ServiceName, route: string): Promise<unknown> {
    const p = this.stack.get(service);
    const token = service === 'gateway' ? undefined : serviceToken(service);
    const headers: Record<string, string> =
      service === 'gateway' ? { 'X-API-Key': KEYS.admin } : { Authorization: `Bearer ${token}` };
    const res = await fetch(`${p.url}${route}`, { headers, signal: AbortSignal.timeout(10_000) });
    if (!res.ok) throw new Error(`${service} ${route}: ${res.status}`);
    return res.json();
  }

  /** The counts a refused request must not change, as one comparable string; undefined where a lane has none. */
  async counts(lane: ServiceName): Promise<string | undefined> {
    switch (lane) {
      case 'calibration-store': {
        const s = (await this.getJson(lane, '/stats')) as Record<string, unknown>;
        return JSON.stringify({ calibrations: s.calibrations, results: s.results, bytes: s.bytes });
      }
      case 'chunked-upload':
        return JSON.stringify(await this.getJson(lane, '/stats'));
      case 'job-worker': {
        // Per task type, summed over statuses: a lease running out moves a job between statuses, not out.
        const s = (await this.getJson(lane, '/jobs/stats')) as {
          by_task_type: Record<string, Record<string, number>>;
        };
        const perType = Object.fromEntries(
          Object.entries(s.by_task_type)
            .sort(([a], [b]) => a.localeCompare(b))
            .map(([t, byStatus]) => [t, Object.values(byStatus).reduce((a, b) => a + b, 0)]),
        );
        return JSON.stringify(perType);
      }
      case 'analytics-test':
      case 'analytics-generator':
      case 'analytics-benchmark': {
        const d = lane.slice('analytics-'.length);
        const s = (await this.getJson(lane, `/api/${d}/db/stats`)) as Record<string, unknown>;
        return JSON.stringify({
          records: s.total_runs ?? s.total_tasks,
          batches: s.total_batches,
          by_status: s.by_status,
        });
      }
      case 'gateway': {
        const s = (await this.getJson(lane, '/api/keys')) as {
          keys: { id: string; revoked_at: unknown; scopes: string[] }[];
        };
        return JSON.stringify(
          s.keys.map((k) => `${k.id}:${k.scopes.join('+')}:${k.revoked_at ? 'revoked' : 'active'}`),
        );
      }
      default:
        return undefined;
    }
  }

  /** Temp files that must be gone once an answer is out (cheap: a few readdirs). */
  quickLeftovers(lane: ServiceName): string[] {
    const data = this.stack.dataDir;
    const list = (dir: string) => (existsSync(dir) ? readdirSync(dir).map((f) => path.join(dir, f)) : []);
    switch (lane) {
      case 'calibration-store':
        // Uploads being checked, and the blob store's puts in flight.
        return [
          ...list(path.join(data, 'calibration-store', 'tmp')),
          ...list(path.join(data, 'calibration-store', '.staging')),
        ];
      case 'analytics-test':
      case 'analytics-generator':
      case 'analytics-benchmark':
        return [
          ...list(path.join(data, 'analytics', `${lane.slice('analytics-'.length)}.tmp`)),
          ...list(path.join(data, 'analytics', '.staging')),
        ];
      case 'job-worker':
        return walk(path.join(data, 'job-worker', 'jobs')).filter((f) => f.endsWith('.part'));
      default:
        return [];
    }
  }

  /** Leftovers that need the service's view: staging without an active upload, job folders without a job. */
  async deepLeftovers(lane: ServiceName): Promise<string[]> {
    const data = this.stack.dataDir;
    if (lane === 'chunked-upload') {
      const staging = path.join(data, 'chunked-upload', 'staging');
      const entries = existsSync(staging) ? readdirSync(staging) : [];
      if (entries.length === 0) return [];
      const active = new Set<string>();
      for (let offset = 0; ; offset += 500) {
        const page = (await this.getJson(lane, `/uploads?status=active&limit=500&offset=${offset}`)) as {
          items: { id: string }[];
        };
        for (const u of page.items) active.add(u.id);
        if (page.items.length < 500) break;
      }
      return entries
        .filter((e) => !active.has(e.replace(/\.(bin|chunks)$/, '')))
        .map((e) => `${path.join(staging, e)} (no active upload owns it)`);
    }
    if (lane === 'job-worker') {
      const root = path.join(data, 'job-worker', 'jobs');
      const out: string[] = [];
      for (const id of existsSync(root) ? readdirSync(root) : []) {
        if (this.knownJobs.has(id)) continue;
        const p = this.stack.get('job-worker');
        const res = await fetch(`${p.url}/jobs/${encodeURIComponent(id)}`, {
          headers: { Authorization: `Bearer ${serviceToken('job-worker')}` },
          signal: AbortSignal.timeout(10_000),
        });
        if (res.status === 200) this.knownJobs.add(id);
        else if (existsSync(path.join(root, id)))
          out.push(`${path.join(root, id)} (folder of no job: ${res.status})`);
      }
      return out;
    }
    return [];
  }

  /** Candidate places a hostile file name could have escaped to; call before the sweep. */
  recordEscapeTargets(): void {
    this.escapesBefore = new Set(this.escapeTargets().filter((p) => existsSync(p)));
  }

  private escapeTargets(): string[] {
    const data = this.stack.dataDir;
    const bases = [
      path.join(data, 'chunked-upload', 'files'),
      path.join(data, 'job-worker', 'jobs', 'x', 'input'),
      path.join(data, 'calibration-store', 'tmp'),
      this.stack.repoRoot,
    ];
    const names = HOSTILE_FILE_NAMES.map((n) => n.name.toString('utf8')).filter((n) => /[/\\]/.test(n));
    return bases.flatMap((b) => names.map((n) => path.resolve(b, n.replace(/\\/g, '/'))));
  }

  /** Files a service wrote outside its own folders: escaped names, or entries no layout has. */
  escapes(): string[] {
    const out = this.escapeTargets()
      .filter((p) => !this.escapesBefore.has(p) && existsSync(p))
      .map((p) => `${p} exists: a hostile file name escaped`);
    const data = this.stack.dataDir;
    const expect = (dir: string, allowed: RegExp) => {
      for (const e of existsSync(dir) ? readdirSync(dir) : [])
        if (!allowed.test(e)) out.push(`${path.join(dir, e)}: not part of the layout`);
    };
    expect(this.stack.tempRoot, /^(data|qibo-server\.json)$/);
    expect(data, /^(calibration-store|chunked-upload|job-worker|quantum-tracker|analytics|gateway)$/);
    expect(path.join(data, 'calibration-store'), /^(archives|tmp|\.staging|qibo\.db(-shm|-wal|-journal)?)$/);
    expect(
      path.join(data, 'chunked-upload'),
      /^(files|staging|keys|direct-io\.probe|generated-api-key|uploads\.db(-shm|-wal|-journal)?)$/,
    );
    expect(path.join(data, 'chunked-upload', 'keys'), /^[a-f0-9]{16}\.json$/);
    expect(path.join(data, 'job-worker'), /^(jobs|jobs\.db(-shm|-wal|-journal)?)$/);
    expect(path.join(data, 'quantum-tracker'), /^tracker\.db(-shm|-wal|-journal)?$/);
    expect(path.join(data, 'gateway'), /^(keys\.db(-shm|-wal|-journal)?|bootstrap-api-key)$/);
    const domains = ANALYTICS_DOMAINS.join('|');
    expect(
      path.join(data, 'analytics'),
      new RegExp(`^((${domains})\\.(duckdb|duckdb\\.wal|tmp)|lake|\\.staging)$`),
    );
    // The lake holds the domains' tables only (lake-export.ts).
    expect(path.join(data, 'analytics', 'lake'), new RegExp(`^(${domains})$`));
    // Upload names are flattened (UPLOAD_PATH_MODE=ignore): a folder in files/ is an escape.
    const files = path.join(data, 'chunked-upload', 'files');
    for (const e of existsSync(files) ? readdirSync(files) : [])
      if (statSync(path.join(files, e)).isDirectory())
        out.push(`${path.join(files, e)}: a folder in a flat upload dir`);
    // A job folder holds input/ and output/ only.
    const jobs = path.join(data, 'job-worker', 'jobs');
    for (const id of existsSync(jobs) ? readdirSync(jobs) : [])
      expect(path.join(jobs, id), /^(input|output)$/);
    return out;
  }
}

function walk(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p));
    else out.push(p);
  }
  return out;
}
