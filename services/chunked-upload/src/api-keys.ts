import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { bearerToken, constantTimeEqual, isOpenRequest, unauthorized } from '@qlab/kit';
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

/** `Authorization: Bearer <key>` against every configured key, in constant time; sets res.locals.keyId. */
export function apiKeyAuth(keys: string[]): RequestHandler {
  const known = keys.map((key) => ({ key, id: keyIdOf(key) }));
  return (req, res, next) => {
    if (isOpenRequest(req)) return next();
    const given = bearerToken(req.headers.authorization);
    if (!given) return next(unauthorized('missing Authorization: Bearer <api key>'));
    // Compare against every key so timing does not reveal which one matched.
    let match: string | undefined;
    for (const k of known) if (constantTimeEqual(k.key, given) && !match) match = k.id;
    if (!match) return next(unauthorized('invalid API key'));
    res.locals.keyId = match;
    next();
  };
}
