import fc from 'fast-check';
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
} from '../generators';
import { HOSTILE_HEADER_VALUES, HOSTILE_QUERY_VALUES, INVALID_UTF8, QUERY_SHAPES } from '../hostile-values';
import type { Operation } from '../openapi';
import { plausibleRequest } from '../plausible';

/**
 * Query parameters: services may clamp, default or ignore odd values, so any sane answer is
 * right; what is judged is no 5xx, no hang, problem+json refusals.
 */
export function queryDrafts(op: Operation, ctx: GenContext): Draft[] {
  const out: Draft[] = [];
  const seed = seedFor(ctx.seed, op.key, 'query');
  const absent = op.method === 'DELETE';
  const base = () => plausibleRequest(op, ctx.fx, 'service', { absent }).spec;
  const names = op.queryParams.map((p) => p.name);
  const add = (label: string, pieces: string[], replace?: string) => {
    const spec = base();
    const query = [...spec.query.filter((q) => q.split('=')[0] !== replace), ...pieces];
    out.push({ op, cls: 'query', label, request: toRaw({ ...spec, query }), expect: either() });
  };
  if (names.length > 0) {
    const pair = fc.tuple(
      fc.integer({ min: 0, max: names.length - 1 }),
      fc.integer({ min: 0, max: HOSTILE_QUERY_VALUES.length - 1 }),
    );
    const picks = draw(pair, seed, 1 + ctx.scale);
    for (const [i, j] of picks) {
      const name = names[i]!;
      const v = HOSTILE_QUERY_VALUES[j]!;
      add(`${name} = ${v.label}`, [`${name}=${v.raw}`], name);
    }
    const shape = someOf(QUERY_SHAPES, 1 + Math.floor(ctx.scale / 2), seed + 1);
    for (const s of shape) add(`${names[0]} ${s.label}`, s.make(names[0]!, '1'), names[0]);
    for (const t of draw(randomText, seed + 2, ctx.scale))
      add(
        `${names[names.length - 1]} = random ${JSON.stringify(t).slice(0, 30)}`,
        [`${names[names.length - 1]}=${percentEncode(t)}`],
        names[names.length - 1],
      );
  }
  // Unknown parameters may be ignored; they must not break anything.
  add('unknown parameter', [`hostile_extra=${percentEncode('../../x')}`]);
  if (names.length > 0) add('prototype pollution', ['__proto__[admin]=1', 'constructor[prototype][admin]=1']);
  return out;
}

/** Whether a documented header value is one the service takes; undefined when free text. */
function headerValid(name: string, value: Buffer): boolean | undefined {
  const v = value.toString('latin1');
  switch (name.toLowerCase()) {
    case 'x-chunk-index':
    case 'x-chunk-total':
      return /^\d{1,9}$/.test(v);
    case 'upload-length':
    case 'upload-offset':
      return /^\d{1,16}$/.test(v);
    case 'x-chunk-sha256':
      return /^[0-9a-fA-F]{64}$/.test(v);
    case 'x-upload-id':
      return /^[\w.-]{1,128}$/.test(v);
    case 'tus-resumable':
      return v === '1.0.0';
    case 'upload-concat':
    case 'upload-checksum':
      return false;
    default:
      return undefined;
  }
}

/** Headers no route documents but every stack reads: ids, forwarding, negotiation. */
const GENERIC_HEADERS = [
  'X-Request-Id',
  'X-Forwarded-Host',
  'X-Forwarded-Proto',
  'X-Forwarded-Prefix',
  'X-Forwarded-For',
  'Accept',
  'Accept-Encoding',
  'Range',
  'If-None-Match',
  'Origin',
];

export function headerDrafts(op: Operation, ctx: GenContext): Draft[] {
  const out: Draft[] = [];
  const seed = seedFor(ctx.seed, op.key, 'header');
  const absent = op.method === 'DELETE';
  const push = (cls: string, name: string, label: string, value: Buffer, refused: boolean) => {
    const spec = withHeaders(plausibleRequest(op, ctx.fx, 'service', { absent }).spec, [[name, value]]);
    out.push({
      op,
      cls,
      label: `${name}: ${label}`,
      request: toRaw(spec),
      expect: refused ? refuse() : either(),
    });
  };
  for (const h of op.headerParams) {
    for (const v of someOf(HOSTILE_HEADER_VALUES, 2 + ctx.scale, seedFor(seed, h.name))) {
      // OPTIONS is discovery: tus reads none of these there.
      const valid = op.method === 'OPTIONS' ? undefined : headerValid(h.name, v.value);
      push('header', h.name, v.label, v.value, valid === false);
    }
  }
  const generic = someOf(GENERIC_HEADERS, 1 + ctx.scale, seed + 1);
  const values = someOf(HOSTILE_HEADER_VALUES, generic.length, seed + 2);
  generic.forEach((name, i) => {
    const v = values[i] ?? HOSTILE_HEADER_VALUES[0]!;
    push('header-generic', name, v.label, v.value, false);
  });
  // Invalid UTF-8 in a header every request has.
  const bad = someOf(INVALID_UTF8, 1, seed + 3)[0]!;
  push('header-generic', 'User-Agent', 'invalid UTF-8', Buffer.concat([Buffer.from('x'), bad]), false);
  return out;
}
