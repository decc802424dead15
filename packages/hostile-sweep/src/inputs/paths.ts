import { toRaw } from '../cases';
import {
  type Draft,
  draw,
  either,
  type GenContext,
  percentEncode,
  randomText,
  refuse,
  seedFor,
  someOf,
  withHeaders,
  withoutAuth,
} from '../generators';
import { HOSTILE_SEGMENTS } from '../hostile-values';
import type { Operation } from '../openapi';
import { authHeaders, fillPath, plausibleRequest } from '../plausible';
import type { KeyName } from '../stack';

/** Parameters that name one stored thing: a hostile value can only be refused (404, 400). */
function namesOneThing(op: Operation, param: string): boolean {
  return (param === 'id' || param === 'path') && op.method !== 'DELETE';
}

/** Hostile values in each path parameter: traversal, encodings, NUL, huge, 1e400, … */
export function pathParamDrafts(op: Operation, ctx: GenContext): Draft[] {
  const out: Draft[] = [];
  for (const param of op.pathParams) {
    const seed = seedFor(ctx.seed, op.key, 'path-param', param);
    const curated = someOf(HOSTILE_SEGMENTS, 4 + ctx.scale, seed);
    const random = draw(randomText, seed + 1, 2 * ctx.scale).map((t) => ({
      label: `random ${JSON.stringify(t).slice(0, 30)}`,
      raw: percentEncode(t),
    }));
    for (const v of [...curated, ...random]) {
      const base = plausibleRequest(op, ctx.fx);
      const spec = { ...base.spec, path: fillPath(op, ctx.fx, { [param]: v.raw }) };
      out.push({
        op,
        cls: 'path-param',
        label: `{${param}} = ${v.label}`,
        request: toRaw(spec),
        expect: namesOneThing(op, param) ? refuse() : either(),
      });
    }
  }
  return out;
}

interface Variant {
  label: string;
  target: (path: string, port: number) => string;
}

/** Ways to write the same path that a router or an auth check may read differently. */
const VARIANTS: Variant[] = [
  { label: 'upper case', target: (p) => p.toUpperCase() },
  {
    label: 'first segment capitalised',
    target: (p) => p.replace(/^\/(\w)/, (_m, c: string) => `/${c.toUpperCase()}`),
  },
  {
    label: 'last segment upper case',
    target: (p) => p.replace(/\/([^/]+)$/, (_m, s: string) => `/${s.toUpperCase()}`),
  },
  { label: '/./ inserted', target: (p) => p.replace(/^(\/[^/]+)/, '$1/.') },
  { label: '/x/../ inserted', target: (p) => p.replace(/^(\/[^/]+)/, '$1/x/..') },
  { label: '%2e%2e segment', target: (p) => p.replace(/^(\/[^/]+)/, '$1/x/%2e%2e') },
  { label: '%2F for a slash', target: (p) => p.replace(/^(\/[^/]+)\//, '$1%2F') },
  { label: 'leading //', target: (p) => `/${p}` },
  { label: 'inner //', target: (p) => p.replace(/^(\/[^/]+)\//, '$1//') },
  { label: 'trailing slash', target: (p) => `${p}/` },
  { label: 'backslash for a slash', target: (p) => p.replace(/^(\/[^/]+)\//, '$1\\') },
  { label: 'absolute-form', target: (p, port) => `http://127.0.0.1:${port}${p}` },
  {
    label: 'absolute-form, upper-case path',
    target: (p, port) => `http://127.0.0.1:${port}${p.toUpperCase()}`,
  },
  { label: 'absolute-form, foreign host', target: (p) => `http://hostile.invalid${p}` },
  { label: 'semicolon parameter', target: (p) => p.replace(/^(\/[^/]+)/, '$1;x=1') },
];

/** The key that lacks the scope an operation needs (read for write, write for admin). */
export function weakerKey(op: Operation): KeyName | undefined {
  if (op.scope === 'admin') return 'write';
  if (op.scope === 'write') return 'read';
  return undefined;
}

/** Path variants with the right key (any sane answer), with none, and with too weak a key (refused, nothing changed). */
export function pathVariantDrafts(op: Operation, ctx: GenContext): Draft[] {
  const out: Draft[] = [];
  const port = ctx.portOf(op);
  const seed = seedFor(ctx.seed, op.key, 'path-variant');
  const base = plausibleRequest(op, ctx.fx, 'service', { absent: op.method === 'DELETE' });
  const make = (v: Variant, who: 'key' | 'none' | KeyName): Draft => {
    let spec = base.spec;
    if (who === 'none') spec = withoutAuth(spec);
    else if (who !== 'key') spec = withHeaders(withoutAuth(spec), authHeaders(op, who));
    const raw = toRaw(spec);
    const q = spec.query.length > 0 ? `?${spec.query.join('&')}` : '';
    raw.target = v.target(spec.path, port) + q;
    const refused = who !== 'key' && !op.open;
    return {
      op,
      cls: who === 'key' ? 'path-variant' : who === 'none' ? 'path-variant-no-key' : 'path-variant-weak-key',
      label: `${v.label}${who === 'key' ? '' : who === 'none' ? ', no key' : `, ${who} key`}`,
      request: raw,
      // With the right key any sane answer will do; without, nothing may pass or change.
      expect: refused ? refuse({ noChange: true }) : either({ noChange: who !== 'key' }),
    };
  };
  for (const v of someOf(VARIANTS, ctx.scale, seed)) out.push(make(v, 'key'));
  if (!op.open) for (const v of someOf(VARIANTS, ctx.scale, seed + 1)) out.push(make(v, 'none'));
  const weak = op.via === 'gateway' ? weakerKey(op) : undefined;
  if (weak) for (const v of someOf(VARIANTS, 1 + ctx.scale, seed + 2)) out.push(make(v, weak));
  return out;
}

/** The variants the brief names for /api/keys, each with every key (the auth matrix prints them). */
export const KEY_PATH_VARIANTS: { label: string; target: (path: string, port: number) => string }[] = [
  { label: 'as documented', target: (p) => p },
  { label: '/API/keys', target: (p) => p.replace('/api/keys', '/API/keys') },
  { label: '/api/KEYS', target: (p) => p.replace('/api/keys', '/api/KEYS') },
  { label: '/Api/Keys', target: (p) => p.replace('/api/keys', '/Api/Keys') },
  { label: '/api/./keys', target: (p) => p.replace('/api/keys', '/api/./keys') },
  { label: '/api/x/../keys', target: (p) => p.replace('/api/keys', '/api/x/../keys') },
  { label: '/api/%2e%2e/api/keys', target: (p) => p.replace('/api/keys', '/api/%2e%2e/api/keys') },
  { label: '/api%2Fkeys', target: (p) => p.replace('/api/keys', '/api%2Fkeys') },
  { label: '//api/keys', target: (p) => `/${p}` },
  { label: '/api//keys', target: (p) => p.replace('/api/keys', '/api//keys') },
  { label: '/api/keys/', target: (p) => `${p}/` },
  { label: 'absolute-form', target: (p, port) => `http://127.0.0.1:${port}${p}` },
  {
    label: 'absolute-form /API/keys',
    target: (p, port) => `http://127.0.0.1:${port}${p.replace('/api/keys', '/API/keys')}`,
  },
  { label: '/api/store/../keys', target: (p) => p.replace('/api/keys', '/api/store/../keys') },
];
