import { toRaw } from '../cases';
import { type Draft, either, type GenContext } from '../generators';
import type { Operation } from '../openapi';
import { plausibleRequest } from '../plausible';
import { authDrafts, overrideDrafts } from './auth';
import { contentTypeDrafts, multipartDrafts, oversizeDrafts, truncatedDrafts } from './bodies';
import { bulkDrafts } from './bulk';
import { fileNameDrafts } from './file-names';
import { jsonDrafts } from './json';
import { pathParamDrafts, pathVariantDrafts } from './paths';
import { protocolDrafts } from './protocol';
import { headerDrafts, queryDrafts } from './query-and-headers';

const PER_OPERATION = [
  pathParamDrafts,
  queryDrafts,
  headerDrafts,
  jsonDrafts,
  contentTypeDrafts,
  oversizeDrafts,
  truncatedDrafts,
  multipartDrafts,
  bulkDrafts,
  fileNameDrafts,
  overrideDrafts,
  pathVariantDrafts,
  authDrafts,
];

/** Every hostile input of the sweep (the authorization matrix is built apart, in auth-matrix.ts). */
export function sweepDrafts(ops: Operation[], ctx: GenContext): Draft[] {
  const out: Draft[] = [];
  for (const op of ops) {
    // The valid request first: it shows the route works, and a 5xx there is wrong too.
    const plausible = plausibleRequest(op, ctx.fx, 'service', { absent: op.method === 'DELETE' });
    out.push({
      op,
      cls: 'plausible',
      label: 'a valid request',
      request: toRaw(plausible.spec),
      expect: either(),
    });
    for (const make of PER_OPERATION) out.push(...make(op, ctx));
  }
  // Framing garbage is judged once per server, on one of its plain GET routes.
  const targets = new Map<string, Operation>();
  for (const op of ops) {
    const target = op.via === 'gateway' ? 'gateway' : op.service;
    const fits = op.method === 'GET' && op.pathParams.length === 0 && !op.open;
    if (fits && !targets.has(target)) targets.set(target, op);
  }
  for (const op of targets.values()) out.push(...protocolDrafts(op, ctx));
  return out;
}
