import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { peerEnvPrefix } from './services';

/** The variable a peer (the gateway, job-worker) reads a service's token from: CALIBRATION_STORE_TOKEN, … */
export const peerTokenVariable = (service: string) => `${peerEnvPrefix(service)}_TOKEN`;

/**
 * A service's token for the local stack: the one set in the environment (its own variable), or
 * one generated once and kept in DATA_DIR/tokens/<service> (0600), so the direct ports work for
 * a developer who reads the file: `Authorization: Bearer $(cat data/tokens/calibration-store)`.
 */
export function serviceToken(dataDir: string, service: string, given: string | undefined): string {
  if (given) return given;
  const dir = path.join(dataDir, 'tokens');
  const file = path.join(dir, service);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  if (existsSync(file)) {
    const kept = readFileSync(file, 'utf8').trim();
    if (kept.length >= 16) return kept;
  }
  const token = randomBytes(32).toString('base64url');
  writeFileSync(file, `${token}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  return token;
}
