import type { Request } from 'express';

const SAFE_PREFIX = /^(\/[\w.~-]+)*$/;

/**
 * The absolute URL a client should use for `path`, as seen through the gateway: honours
 * X-Forwarded-Proto and X-Forwarded-Host (via Express's trust proxy setting) and
 * X-Forwarded-Prefix (the gateway's mount path, e.g. /api/store). A malformed prefix is ignored.
 */
export function publicUrl(req: Request, path: string): string {
  const given = req.get('x-forwarded-prefix')?.replace(/\/+$/, '') ?? '';
  const prefix = SAFE_PREFIX.test(given) ? given : '';
  return `${req.protocol}://${req.host}${prefix}${path}`;
}
