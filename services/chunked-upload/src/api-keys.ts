import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  badRequest,
  bearerToken,
  CALLER_KEY_ID_HEADER,
  constantTimeEqual,
  isOpenRequest,
  unauthorized,
} from '@qlab/kit';
import type { RequestHandler } from 'express';

/** A stable, non-secret id for a key: uploads belong to the key that created them. */
export function keyIdOf(key: string): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 16);
}

/**
 * The seed server makes up a key when none is configured; we do the same, but keep it in the
 * data dir (mode 0600) so a restart does not lock out clients resuming their uploads.
 */
export async function generatedKey(dataDir: string): Promise<string> {
  const file = path.join(dataDir, 'generated-api-key');
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch {
    const key = randomBytes(32).toString('hex');
    await mkdir(dataDir, { recursive: true });
    await writeFile(file, `${key}\n`, { mode: 0o600 });
    await chmod(file, 0o600);
    return key;
  }
}

/** Gateway key ids are 16 hex digits (gateway/src/keys.ts). */
const GATEWAY_KEY_ID = /^[0-9a-f]{16}$/;

/**
 * `Authorization: Bearer <key>` against every configured key, in constant time, and sets
 * res.locals.keyId: who owns the uploads this request may see.
 * - a client key (UPLOAD_API_KEYS): the key's own id;
 * - the gateway's token (UPLOAD_GATEWAY_TOKEN) with X-Qlab-Key-Id: `gw:<caller's key id>`, so
 *   callers behind the gateway see only their own uploads; without the header, `gw` (the
 *   gateway's own calls, such as its cross-service search).
 * X-Qlab-Key-Id is believed only with the gateway's token. `openGets` are paths anyone may GET.
 */
export function apiKeyAuth(keys: string[], gatewayToken?: string, openGets: string[] = []): RequestHandler {
  const known = keys.map((key) => ({ key, id: keyIdOf(key) }));
  if (gatewayToken) known.push({ key: gatewayToken, id: 'gw' });
  return (req, res, next) => {
    if (isOpenRequest(req) || (req.method === 'GET' && openGets.includes(req.path))) return next();
    const given = bearerToken(req.headers.authorization);
    if (!given) return next(unauthorized('missing Authorization: Bearer <api key>'));
    // Compare against every key so timing does not reveal which one matched.
    let match: string | undefined;
    for (const k of known) if (constantTimeEqual(k.key, given) && !match) match = k.id;
    if (!match) return next(unauthorized('invalid API key'));
    if (match === 'gw') {
      const caller = req.headers[CALLER_KEY_ID_HEADER];
      if (caller !== undefined) {
        if (typeof caller !== 'string' || !GATEWAY_KEY_ID.test(caller))
          return next(badRequest(`${CALLER_KEY_ID_HEADER} must be a gateway key id (16 hex digits)`));
        match = `gw:${caller}`;
      }
    }
    res.locals.keyId = match;
    next();
  };
}
