import { type RequestSpec, toRaw } from '../cases';
import {
  type Draft,
  either,
  type GenContext,
  refuse,
  seedFor,
  someOf,
  withHeaders,
  withoutAuth,
} from '../generators';
import type { Operation } from '../openapi';
import { authHeaders, plausibleRequest, WRONG_KEY } from '../plausible';
import { KEYS, serviceToken } from '../stack';

const denied = () => refuse({ exact: [401], noChange: true });

/** Missing, wrong and malformed credentials on every operation: 401, and nothing changes. */
export function authDrafts(op: Operation, ctx: GenContext): Draft[] {
  const base = plausibleRequest(op, ctx.fx, 'service', { absent: op.method === 'DELETE' }).spec;
  const bare = withoutAuth(base);
  const out: Draft[] = [];
  const push = (label: string, spec: RequestSpec, expect: Draft['expect']) =>
    out.push({ op, cls: 'auth', label, request: toRaw(spec), expect });
  if (op.open) {
    push('no key (open route)', bare, either({ noChange: true }));
    return out;
  }
  push('no key', bare, denied());
  push('wrong key', withHeaders(bare, authHeaders(op, 'wrong')), denied());
  const secret = op.via === 'gateway' ? KEYS.admin : serviceToken(op.service)!;
  const malformed: [string, [string, string | Buffer][], boolean][] = [
    ['Authorization: Bearer (no token)', [['Authorization', 'Bearer']], false],
    [
      'Authorization: Basic',
      [['Authorization', `Basic ${Buffer.from(`x:${secret}`).toString('base64')}`]],
      false,
    ],
    ['Bearer <secret> plus a word', [['Authorization', `Bearer ${secret} extra`]], false],
    [
      'Bearer <secret> plus invalid UTF-8',
      [['Authorization', Buffer.concat([Buffer.from(`Bearer ${secret}`), Buffer.from([0xff, 0xfe])])]],
      false,
    ],
    ['Bearer <secret in upper case>', [['Authorization', `Bearer ${secret.toUpperCase()}`]], false],
    ['Bearer of 4000 characters', [['Authorization', `Bearer ${'k'.repeat(4000)}`]], false],
    // The scheme is case-insensitive (RFC 9110): this one is valid.
    ['authorization: bearer <secret> (lower case)', [['authorization', `bearer ${secret}`]], true],
  ];
  if (op.via === 'gateway') {
    malformed.push(
      ['X-API-Key empty', [['X-API-Key', '']], false],
      [
        'X-API-Key with invalid UTF-8',
        [['X-API-Key', Buffer.concat([Buffer.from(KEYS.admin), Buffer.from([0xc0, 0xaf])])]],
        false,
      ],
      [
        'wrong X-API-Key, right Bearer',
        [
          ['X-API-Key', WRONG_KEY],
          ['Authorization', `Bearer ${KEYS.admin}`],
        ],
        false,
      ],
    );
  }
  for (const [label, headers, valid] of someOf(malformed, ctx.scale, seedFor(ctx.seed, op.key, 'auth')))
    push(label, withHeaders(bare, headers), valid ? either() : denied());
  // Keys in the query string are for WebSocket upgrades only.
  const param = op.via === 'gateway' ? `api_key=${KEYS.admin}` : `access_token=${secret}`;
  push(
    `secret in the query (?${param.split('=')[0]}=)`,
    { ...bare, query: [...bare.query, param] },
    denied(),
  );
  return out;
}

const OVERRIDES = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];

/** The request another method would send to the same path: an override carries its headers and body. */
function overridden(op: Operation, method: string, ctx: GenContext): RequestSpec {
  const sibling = ctx.byKey.get(`${op.via} ${method} ${op.template}`);
  const absent = method === 'DELETE' || op.method === 'DELETE';
  const spec = plausibleRequest(sibling ?? op, ctx.fx, 'service', { absent }).spec;
  return withHeaders({ ...spec, method: op.method }, [['X-HTTP-Method-Override', method]]);
}

/**
 * X-HTTP-Method-Override on every method: with the right key any sane answer will do; with
 * no key it must be refused (or, on an open route, change nothing); through the gateway a
 * read key must not reach a write by naming it in the header.
 */
export function overrideDrafts(op: Operation, ctx: GenContext): Draft[] {
  const siblings = OVERRIDES.filter((m) => m !== op.method && ctx.byKey.has(`${op.via} ${m} ${op.template}`));
  const sampled = someOf(
    OVERRIDES.filter((m) => m !== op.method && !siblings.includes(m)),
    1,
    seedFor(ctx.seed, op.key, 'override'),
  );
  const methods = [...siblings, ...sampled];
  const out: Draft[] = [];
  for (const m of methods) {
    const spec = overridden(op, m, ctx);
    out.push({ op, cls: 'method-override', label: `override ${m}`, request: toRaw(spec), expect: either() });
    out.push({
      op,
      cls: 'method-override-no-key',
      label: `override ${m}, no key`,
      request: toRaw(withoutAuth(spec)),
      expect: op.open ? either({ noChange: true }) : denied(),
    });
    if (op.via === 'gateway' && op.scope === 'read' && m !== 'GET' && m !== 'HEAD') {
      out.push({
        op,
        cls: 'method-override-read-key',
        label: `override ${m}, read key`,
        request: toRaw(withHeaders(withoutAuth(spec), authHeaders(op, 'read'))),
        expect: either({ noChange: true }),
      });
    }
  }
  return out;
}
