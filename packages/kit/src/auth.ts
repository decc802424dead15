import { createHash, timingSafeEqual } from 'node:crypto';
import type { Request, RequestHandler } from 'express';
import { unauthorized } from './errors';
import { isCorsPreflight } from './request-target';

/**
 * Set by the gateway on every call it proxies: the id of the caller's gateway key. A service
 * believes it only on a request that carries the gateway's own token (the gateway replaces
 * whatever a caller sent).
 */
export const CALLER_KEY_ID_HEADER = 'x-qlab-key-id';
/** The scopes of the caller's gateway key (read,write,admin), set by the gateway beside its id. */
export const CALLER_SCOPES_HEADER = 'x-qlab-key-scopes';

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
 * Routes every service serves without credentials: probes, metrics, the API description, and
 * real CORS preflights (never any OPTIONS: tus discovery and method overrides need a key).
 */
export function isOpenRequest(req: Request): boolean {
  if (isCorsPreflight(req)) return true;
  const p = req.path;
  return (
    p === '/health' ||
    p === '/ready' ||
    p === '/metrics' ||
    p === '/openapi.json' ||
    p === '/asyncapi.json' ||
    p.startsWith('/docs') ||
    p === '/redoc' ||
    p.startsWith('/redoc/')
  );
}

/**
 * Requires `Authorization: Bearer <token>` matching one of `tokens` on every route but the open
 * ones. With no tokens configured, everything is open (the local default). `apiKeyHeader` also
 * takes the token as `X-API-Key` (seed 003's clients send that).
 */
export function bearerAuth(tokens: string[], options: { apiKeyHeader?: boolean } = {}): RequestHandler {
  return (req, _res, next) => {
    if (tokens.length === 0 || isOpenRequest(req)) return next();
    const apiKey = options.apiKeyHeader ? req.headers['x-api-key'] : undefined;
    const given =
      bearerToken(req.headers.authorization) ??
      (typeof apiKey === 'string' && apiKey !== '' ? apiKey : undefined);
    if (!given)
      return next(
        unauthorized(`missing Authorization: Bearer token${options.apiKeyHeader ? ' (or X-API-Key)' : ''}`),
      );
    if (!tokens.some((t) => constantTimeEqual(t, given))) return next(unauthorized('invalid token'));
    next();
  };
}
