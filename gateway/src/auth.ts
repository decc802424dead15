import type { IncomingMessage } from 'node:http';
import { AppError, bearerToken, forbidden, serviceUnavailable, unauthorized } from '@qlab/kit';
import type { NextFunction, Request, Response } from 'express';
import type { Scope } from './config';
import type { KeyInfo, KeyStore } from './keys';
import type { RateLimiter } from './rate-limit';

/**
 * A browser cannot set headers on a WebSocket, so it offers its key as a subprotocol,
 * `qlab-key.<key>`, beside `qlab`, the one the gateway answers (RFC 6455 §4.1: the server picks
 * one the client offered). The key so stays out of URLs and logs; Kubernetes does the same with
 * `base64url.bearer.authorization.k8s.io.<token>`. Keys are base64url, valid protocol tokens.
 */
export const KEY_PROTOCOL_PREFIX = 'qlab-key.';
export const CONSOLE_PROTOCOL = 'qlab';

function offeredProtocols(req: IncomingMessage): string[] {
  const header = req.headers['sec-websocket-protocol'];
  return (Array.isArray(header) ? header.join(',') : (header ?? ''))
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
}

/** Takes the key protocol out of an upgrade before it goes on (to the events socket or a service). */
export function dropKeyProtocol(req: IncomingMessage): void {
  const rest = offeredProtocols(req).filter((p) => !p.startsWith(KEY_PROTOCOL_PREFIX));
  if (rest.length > 0) req.headers['sec-websocket-protocol'] = rest.join(', ');
  else delete req.headers['sec-websocket-protocol'];
}

/**
 * The caller's key: X-API-Key, or Authorization: Bearer; on WebSockets also the `qlab-key.`
 * subprotocol or ?api_key= (for scripts that can set neither).
 */
export function keyFrom(req: IncomingMessage, upgrade = false): string | undefined {
  const header = req.headers['x-api-key'];
  if (typeof header === 'string' && header !== '') return header;
  const bearer = bearerToken(req.headers.authorization);
  if (bearer) return bearer;
  if (!upgrade) return undefined;
  const offered = offeredProtocols(req).find((p) => p.startsWith(KEY_PROTOCOL_PREFIX));
  if (offered) return offered.slice(KEY_PROTOCOL_PREFIX.length) || undefined;
  return new URL(req.url ?? '/', 'http://x').searchParams.get('api_key') ?? undefined;
}

/**
 * Checks the caller's key and its rate limit, and that it holds `needed` (when given). Missing
 * or unknown key: 401; known key without the scope: 403; over the limit: 429.
 */
export async function authenticate(
  keys: KeyStore,
  limiter: RateLimiter,
  req: IncomingMessage,
  needed: Scope | undefined,
  allowQuery = false,
): Promise<KeyInfo> {
  const key = keyFrom(req, allowQuery);
  if (!key) throw unauthorized('send an API key in X-API-Key (or Authorization: Bearer)');
  // A key store that cannot answer (the database stalled: its queries time out) refuses, as 503.
  const info = await keys.verify(key).catch(() => {
    throw serviceUnavailable('the key store did not answer; try again');
  });
  if (!info) throw unauthorized('unknown or revoked API key');
  if (needed) requireScope(info, needed);
  const wait = await limiter.take(info.id);
  if (wait > 0)
    throw new AppError(429, 'RATE_LIMITED', 'too many requests for this key; slow down', {
      retry_after_seconds: Math.ceil(wait / 1000),
    });
  return info;
}

function requireScope(info: KeyInfo, needed: Scope): void {
  if (!info.scopes.includes(needed)) throw forbidden(`this key lacks the ${needed} scope`);
}

/** The headers a refused call gets besides its problem: when to retry, or how to authenticate. */
export function authFailureHeaders(err: unknown): Record<string, string> {
  if (!(err instanceof AppError)) return {};
  if (err.status === 429) return { 'Retry-After': String(err.extras.retry_after_seconds) };
  if (err.status === 401) return { 'WWW-Authenticate': 'Key realm="qlab"' };
  return {};
}

/**
 * Express middleware for the gateway's own /api routes: the key must be valid; each route then
 * names the scope it needs with `needs(scope)`, so the scope belongs to the route that runs and
 * not to a reading of the path.
 */
export function apiKeyAuth(keys: KeyStore, limiter: RateLimiter) {
  return async (req: Request, res: Response, next: NextFunction) => {
    try {
      res.locals.key = await authenticate(keys, limiter, req, undefined);
      next();
    } catch (err) {
      for (const [name, value] of Object.entries(authFailureHeaders(err))) res.setHeader(name, value);
      next(err);
    }
  };
}

/** The scope one of the gateway's own routes needs; runs after apiKeyAuth. */
export function needs(scope: Scope) {
  return (_req: Request, res: Response, next: NextFunction) => {
    try {
      requireScope(res.locals.key as KeyInfo, scope);
      next();
    } catch (err) {
      next(err);
    }
  };
}
