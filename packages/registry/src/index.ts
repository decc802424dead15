/**
 * The one table of qlab's services. The gateway (upstream variables, mounts, scopes, the merged
 * OpenAPI), the local stack (`pnpm start`), the chaos and hostile-input suites and the tests of
 * docker-compose.yml and the README read it. Adding a service is its folder plus one entry here.
 */

/** Where a service appears on the gateway, and how a public path maps to the service's own. */
export interface Mount {
  /** The public prefix, e.g. /api/store. */
  readonly prefix: string;
  /** The service path the prefix stands for: '' is the service's root, '/jobs' its jobs. */
  readonly servicePrefix: string;
  /** Bodies and downloads may take as long as they take: no overall proxy deadline. */
  readonly streaming?: boolean;
  /** Paths below the prefix whose POST only reads (the seeds' POST downloads, searches, exports). */
  readonly readOnlyPosts?: readonly string[];
  /** Paths below the prefix whose POST only an admin key may call (key rotation). */
  readonly adminPosts?: readonly string[];
}

export interface ServiceEntry {
  /** The process's name: the compose service, the log prefix, the gateway's upstream id. */
  readonly id: string;
  /** Its folder, from the repo root; several entries may share one (the analytics domains). */
  readonly dir: string;
  /** Its default port (the README's port list). */
  readonly port: number;
  /**
   * The prefix of the variables others find it by: `<PREFIX>_URL` and `<PREFIX>_TOKEN` for its
   * peers, `<PREFIX>_PORT` for the stack.
   */
  readonly envPrefix: string;
  /** The variable the service reads its own API token from; none for the gateway. */
  readonly tokenEnv?: string;
  /** Fixed environment of this entry (the analytics domain it serves). */
  readonly env?: Readonly<Record<string, string>>;
  /** Its place behind the gateway; none for the gateway itself. */
  readonly mount?: Mount;
  /**
   * What it adds to the gateway's cross-service views: the member of `GET /api/db/overview` and
   * the list of `GET /api/db/search`'s `results` it fills. The gateway's
   * `src/views/contributions.ts` says how; its test checks the two agree.
   */
  readonly views?: { readonly overview?: string; readonly search?: string };
}

const ANALYTICS_DOMAINS = ['test', 'generator', 'benchmark'] as const;
export type AnalyticsDomain = (typeof ANALYTICS_DOMAINS)[number];

/** Every service, the gateway last: it finds the others through the variables they are given. */
export const SERVICES = [
  {
    id: 'calibration-store',
    dir: 'services/calibration-store',
    port: 5050,
    envPrefix: 'CALIBRATION_STORE',
    tokenEnv: 'QIBO_API_TOKEN',
    mount: {
      prefix: '/api/store',
      servicePrefix: '',
      streaming: true,
      readOnlyPosts: ['/calibrations/download', '/results/download'],
    },
    views: { overview: 'calibration_stats', search: 'calibrations' },
  },
  {
    id: 'chunked-upload',
    dir: 'services/chunked-upload',
    port: 3000,
    envPrefix: 'CHUNKED_UPLOAD',
    tokenEnv: 'UPLOAD_GATEWAY_TOKEN',
    mount: { prefix: '/api/uploads', servicePrefix: '', streaming: true, adminPosts: ['/rotate-keys'] },
    views: { overview: 'upload_stats', search: 'uploads' },
  },
  {
    id: 'job-worker',
    dir: 'services/job-worker',
    port: 8100,
    envPrefix: 'JOB_WORKER',
    tokenEnv: 'JOBS_API_TOKEN',
    mount: { prefix: '/api/jobs', servicePrefix: '/jobs', streaming: true },
    views: { overview: 'job_stats', search: 'jobs' },
  },
  {
    id: 'quantum-tracker',
    dir: 'services/quantum-tracker',
    port: 8000,
    envPrefix: 'QUANTUM_TRACKER',
    tokenEnv: 'TRACKER_API_TOKEN',
    mount: { prefix: '/api/v1', servicePrefix: '/api/v1' },
    views: { overview: 'tracker_stats', search: 'tracker' },
  },
  // One analytics codebase, one process and DuckDB file per domain.
  ...ANALYTICS_DOMAINS.map(
    (domain, i) =>
      ({
        id: `analytics-${domain}`,
        dir: 'services/analytics',
        port: 8200 + i,
        envPrefix: `ANALYTICS_${domain.toUpperCase()}`,
        tokenEnv: 'ANALYTICS_API_TOKEN',
        env: { ANALYTICS_DOMAIN: domain },
        mount: {
          prefix: `/api/db/${domain}`,
          servicePrefix: `/api/${domain}/db`,
          streaming: true,
          readOnlyPosts: ['/search', '/export'],
        },
        views: { overview: `${domain}_stats`, search: domain },
      }) as const,
  ),
  { id: 'gateway', dir: 'gateway', port: 8080, envPrefix: 'GATEWAY' },
] as const satisfies readonly ServiceEntry[];

export type ServiceId = (typeof SERVICES)[number]['id'];
/** The services behind the gateway. */
export type MountedService = Extract<(typeof SERVICES)[number], { mount: Mount }>;
export type MountedId = MountedService['id'];

export const MOUNTED: readonly MountedService[] = SERVICES.filter((s): s is MountedService => 'mount' in s);

export const analyticsDomains: readonly AnalyticsDomain[] = ANALYTICS_DOMAINS;

export function serviceById(id: string): ServiceEntry | undefined {
  return (SERVICES as readonly ServiceEntry[]).find((s) => s.id === id);
}

/** The service path for the part of a public path after its mount's prefix ('/' or '/x…'). */
export function toServicePath(mount: Mount, rest: string): string {
  if (mount.servicePrefix === '') return rest;
  // The mount's own path, with or without a query (`/api/jobs?status=error`), is the service prefix.
  const q = rest.indexOf('?');
  const path = q === -1 ? rest : rest.slice(0, q);
  const search = q === -1 ? '' : rest.slice(q);
  return path === '/' || path === '' ? `${mount.servicePrefix}${search}` : `${mount.servicePrefix}${rest}`;
}

/** A service path's public path through the gateway, or undefined when it is not under the mount. */
export function toPublicPath(mount: Mount, servicePath: string): string | undefined {
  const p = mount.servicePrefix;
  if (p === '') return `${mount.prefix}${servicePath}`;
  if (servicePath !== p && !servicePath.startsWith(`${p}/`)) return undefined;
  return `${mount.prefix}${servicePath.slice(p.length)}`;
}
