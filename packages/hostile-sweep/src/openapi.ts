import type { HostileStack, KeyName, ServiceName } from './stack';

export type Via = 'direct' | 'gateway';

export interface Param {
  name: string;
  type?: string;
}

/** One path × method of an OpenAPI document: what the sweep attacks. */
export interface Operation {
  /** e.g. "gateway GET /api/store/calibrations/{id}" */
  key: string;
  via: Via;
  /** Who finally answers: the service behind the mount, or the gateway for its own routes. */
  service: ServiceName;
  method: string;
  /** The documented path, e.g. /api/store/calibrations/{id}. */
  template: string;
  /** The same path as the service itself documents it (mount prefix undone). */
  serviceTemplate: string;
  pathParams: string[];
  queryParams: Param[];
  headerParams: Param[];
  /** Media types of the documented request body. */
  bodyTypes: string[];
  /** Served without a key: documented with `security: []`, or an OPTIONS on a service. */
  open: boolean;
  /** Gateway operations: the scope a key needs, and where that expectation came from. */
  scope?: KeyName;
  scopeSource?: 'x-qlab-scope' | 'documented rule';
}

interface DocOperation {
  parameters?: { name: string; in: string; schema?: { type?: string } }[];
  requestBody?: { content?: Record<string, unknown> };
  security?: unknown[];
  'x-qlab-scope'?: string;
}
type Doc = { paths?: Record<string, Record<string, DocOperation>> };

const METHODS = ['get', 'head', 'options', 'post', 'put', 'patch', 'delete'];

/** The gateway's mounts, backwards: a public path → the service that answers it and its own path. */
export function behindGateway(publicPath: string): { service: ServiceName; path: string } {
  const m = /^\/api\/(store|uploads|v1|jobs|db\/(test|generator|benchmark))(\/.*)?$/.exec(publicPath);
  if (!m) return { service: 'gateway', path: publicPath };
  const rest = m[3] ?? '';
  switch (m[1]) {
    case 'store':
      return { service: 'calibration-store', path: rest || '/' };
    case 'uploads':
      return { service: 'chunked-upload', path: rest || '/' };
    case 'v1':
      return { service: 'quantum-tracker', path: `/api/v1${rest}` };
    case 'jobs':
      return { service: 'job-worker', path: `/jobs${rest}` };
    default:
      return { service: `analytics-${m[2]}` as ServiceName, path: `/api/${m[2]}/db${rest}` };
  }
}

const READ_ONLY_POSTS = [
  /^\/api\/db\/search$/,
  /^\/api\/store\/(calibrations|results)\/download$/,
  /^\/api\/db\/(test|generator|benchmark)\/(search|export)$/,
];

/**
 * The scope a gateway operation needs: its `x-qlab-scope` when the merged document publishes
 * one, else the documented rule (keys need admin; GET/HEAD/OPTIONS and the read-only POSTs
 * need read; everything else needs write).
 */
export function expectedScope(
  method: string,
  path: string,
  published?: string,
): { scope: KeyName; source: Operation['scopeSource'] } {
  if (published === 'read' || published === 'write' || published === 'admin')
    return { scope: published, source: 'x-qlab-scope' };
  // Any valid key: every key of the sweep holds read (scopes are cumulative there).
  if (published === 'any') return { scope: 'read', source: 'x-qlab-scope' };
  if (path.startsWith('/api/keys')) return { scope: 'admin', source: 'documented rule' };
  if (['GET', 'HEAD', 'OPTIONS'].includes(method)) return { scope: 'read', source: 'documented rule' };
  if (method === 'POST' && READ_ONLY_POSTS.some((r) => r.test(path)))
    return { scope: 'read', source: 'documented rule' };
  return { scope: 'write', source: 'documented rule' };
}

function operationsOf(doc: Doc, via: Via, docService: ServiceName): Operation[] {
  const out: Operation[] = [];
  for (const [template, item] of Object.entries(doc.paths ?? {})) {
    for (const [lower, op] of Object.entries(item)) {
      if (!METHODS.includes(lower)) continue;
      const method = lower.toUpperCase();
      const mapped = via === 'gateway' ? behindGateway(template) : { service: docService, path: template };
      const params = op.parameters ?? [];
      const pick = (where: string) =>
        params.filter((p) => p.in === where).map((p) => ({ name: p.name, type: p.schema?.type }));
      const fromTemplate = [...template.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!);
      const scope = via === 'gateway' ? expectedScope(method, template, op['x-qlab-scope']) : undefined;
      out.push({
        key: `${via === 'gateway' ? 'gateway' : docService} ${method} ${template}`,
        via,
        service: mapped.service,
        method,
        template,
        serviceTemplate: mapped.path,
        pathParams: fromTemplate,
        queryParams: pick('query'),
        headerParams: pick('header'),
        bodyTypes: Object.keys(op.requestBody?.content ?? {}),
        // The kit serves every OPTIONS without credentials (preflights, tus discovery).
        open:
          (Array.isArray(op.security) && op.security.length === 0) ||
          (via === 'direct' && method === 'OPTIONS'),
        scope: scope?.scope,
        scopeSource: scope?.source,
      });
    }
  }
  return out;
}

async function getDoc(url: string): Promise<Doc> {
  const res = await fetch(`${url}/openapi.json`, { signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new Error(`${url}/openapi.json: ${res.status}`);
  return (await res.json()) as Doc;
}

export interface Operations {
  direct: Operation[];
  gateway: Operation[];
  /** Services whose document the gateway's merged one lacks (it could not reach them). */
  missingFromGateway: ServiceName[];
}

/** Every operation of every service's own document and of the gateway's merged document. */
export async function loadOperations(stack: HostileStack): Promise<Operations> {
  const direct: Operation[] = [];
  for (const p of stack.services.values()) {
    if (p.name === 'gateway') continue;
    direct.push(...operationsOf(await getDoc(p.url), 'direct', p.name));
  }
  const gateway = operationsOf(await getDoc(stack.get('gateway').url), 'gateway', 'gateway');
  const served = new Set(gateway.map((o) => o.service));
  const missingFromGateway = [...stack.services.keys()].filter((s) => s !== 'gateway' && !served.has(s));
  return { direct, gateway, missingFromGateway };
}
