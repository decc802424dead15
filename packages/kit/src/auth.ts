import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { unauthorized } from './errors';

/** Compares secrets in constant time (hashing first makes lengths equal and leaks nothing). */
export function constantTimeEqual(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb);
}

/** Reads `Authorization: Bearer <token>`; undefined when absent or another scheme. */
export function bearerToken(header: string | undefined): string | undefined {
  const m = /^Bearer\s+(.+)$/i.exec(header ?? '');
  return m?.[1]?.trim();
}

/**
 * Requires `Authorization: Bearer <token>` matching one of `tokens` on every route except
 * `open` paths. With no tokens configured, everything is open (the local default).
 */
export function bearerAuth(
  tokens: () => string[],
  open: string[] = ['/health', '/ready', '/metrics'],
): RequestHandler {
  return (req, _res, next) => {
    const allowed = tokens();
    if (allowed.length === 0 || open.includes(req.path) || req.method === 'OPTIONS') return next();
    if (req.path === '/openapi.json' || req.path.startsWith('/docs')) return next();
    const given = bearerToken(req.headers.authorization);
    if (!given) return next(unauthorized('missing Authorization: Bearer token'));
    if (!allowed.some((t) => constantTimeEqual(t, given))) return next(unauthorized('invalid token'));
    next();
  };
}
