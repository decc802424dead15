import { createPrivateKey, type KeyObject } from 'node:crypto';
import { readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { AppError, type Logger, privateDir } from '@qlab/kit';
import { KID, newServerKeyPair, type ServerKeyPair } from '../domain/envelope';

export interface ServerKeysOptions {
  /** One `<kid>.json` per key, the original's filesystem keystore format (so its server-keys/ can be reused). */
  dir: string;
  modulusLength: number;
  /** Keys older than this are deleted at start and on rotation (the original's maxKeyAge). */
  maxKeyAgeMs: number;
  logger: Logger;
  now?: () => number;
}

/** How long a client may use a public key it fetched, at most (the original's 30 days). */
const PUBLIC_KEY_LIFETIME_MS = 30 * 24 * 3600 * 1000;
/** Key pairs kept at once: rotation beyond this is refused (each is kept for decryption). */
export const MAX_KEYS = 32;
/** Rotations at most this often: each makes an RSA key pair (seconds of CPU at 4096 bits). */
export const MIN_ROTATION_INTERVAL_MS = 60_000;

/**
 * The server's RSA key pairs: one active (handed out by GET /public-key), older ones kept so
 * packets wrapped with them while a client was offline still decrypt (the original's AC4).
 */
export class ServerKeys {
  private readonly keys = new Map<string, ServerKeyPair>();
  private activeKid: string | undefined;
  private rotating: Promise<string> | undefined;
  private lastRotation = Number.NEGATIVE_INFINITY;
  /** Parsed private keys: parsing a PEM per packet would cost more than the decryption. */
  private readonly parsed = new Map<string, KeyObject>();
  private readonly now: () => number;

  constructor(private readonly options: ServerKeysOptions) {
    this.now = options.now ?? Date.now;
  }

  /** Loads the kept keys, drops expired ones, and makes a key pair when none is active. */
  async init(): Promise<void> {
    privateDir(this.options.dir);
    for (const entry of await readdir(this.options.dir)) {
      if (!entry.endsWith('.json')) continue;
      try {
        const key = JSON.parse(await readFile(path.join(this.options.dir, entry), 'utf8')) as ServerKeyPair;
        if (!KID.test(key.kid) || typeof key.privateKey !== 'string' || typeof key.publicKey !== 'string')
          throw new Error('not a key pair');
        this.keys.set(key.kid, key);
        if (key.active && (!this.activeKid || key.createdAt > this.keys.get(this.activeKid)!.createdAt))
          this.activeKid = key.kid;
      } catch (err) {
        this.options.logger.warn({ file: entry, err }, 'skipped an unreadable key file');
      }
    }
    await this.dropExpired();
    if (!this.activeKid || !this.keys.has(this.activeKid)) await this.rotate({ force: true });
    this.options.logger.info({ activeKid: this.activeKid, keys: this.keys.size }, 'encryption keys ready');
  }

  /**
   * The active public key. A client may cache it until `expiresAt`: 30 days from now, or less
   * when keys are kept for less, so a key a client still uses is never deleted under it (an
   * inactive key is kept for the whole maxKeyAge after it was retired).
   */
  publicKey(): { publicKey: string; kid: string; expiresAt: number } {
    const key = this.keys.get(this.activeKid ?? '');
    if (!key) throw new AppError(503, 'NO_ACTIVE_KEY', 'no encryption key is active yet');
    const lifetime = Math.min(PUBLIC_KEY_LIFETIME_MS, this.options.maxKeyAgeMs);
    return { publicKey: key.publicKey, kid: key.kid, expiresAt: this.now() + lifetime };
  }

  privateKey(kid: string): KeyObject {
    const key = this.keys.get(kid);
    if (!key)
      throw new AppError(
        400,
        'UNKNOWN_KEY_ID',
        `key ${kid} is not (or no longer) one of this server's keys; fetch GET /public-key and encrypt again`,
      );
    let parsed = this.parsed.get(kid);
    if (!parsed) {
      parsed = createPrivateKey(key.privateKey);
      this.parsed.set(kid, parsed);
    }
    return parsed;
  }

  /**
   * A new active key; the old ones stay for decryption. Concurrent calls share one rotation;
   * more than one a minute, or past MAX_KEYS kept keys, is refused (429).
   */
  rotate(options: { force?: boolean } = {}): Promise<string> {
    if (!this.rotating && !options.force) {
      const wait = this.lastRotation + MIN_ROTATION_INTERVAL_MS - this.now();
      if (wait > 0)
        throw new AppError(
          429,
          'ROTATED_RECENTLY',
          `the keys were rotated less than a minute ago; try in ${Math.ceil(wait / 1000)} s`,
        );
      if (this.keys.size >= MAX_KEYS)
        throw new AppError(
          429,
          'TOO_MANY_KEYS',
          `${this.keys.size} key pairs are kept (the most is ${MAX_KEYS}); older ones go after UPLOAD_ENCRYPTION_MAX_KEY_AGE`,
        );
    }
    if (!this.rotating && !options.force) this.lastRotation = this.now();
    this.rotating ??= this.doRotate().finally(() => {
      this.rotating = undefined;
    });
    return this.rotating;
  }

  status(): { activeKeyId: string | undefined; totalKeys: number } {
    return { activeKeyId: this.activeKid, totalKeys: this.keys.size };
  }

  private async doRotate(): Promise<string> {
    const fresh = await newServerKeyPair(this.options.modulusLength, this.now());
    await this.persist(fresh);
    const previous = this.activeKid ? this.keys.get(this.activeKid) : undefined;
    this.keys.set(fresh.kid, fresh);
    this.activeKid = fresh.kid;
    if (previous) {
      previous.active = false;
      previous.retiredAt = this.now();
      await this.persist(previous);
    }
    await this.dropExpired();
    this.options.logger.info({ kid: fresh.kid }, 'new encryption key active');
    return fresh.kid;
  }

  /** Deletes inactive keys retired more than maxKeyAge ago (keys of the original: made that long ago). */
  private async dropExpired(): Promise<void> {
    const oldest = this.now() - this.options.maxKeyAgeMs;
    for (const [kid, key] of this.keys) {
      if (kid === this.activeKid || (key.retiredAt ?? key.createdAt) >= oldest) continue;
      await rm(path.join(this.options.dir, `${kid}.json`), { force: true });
      this.keys.delete(kid);
      this.parsed.delete(kid);
      this.options.logger.info({ kid }, 'removed an expired encryption key');
    }
  }

  /** Written aside and renamed, so a crash never leaves half a private key. */
  private async persist(key: ServerKeyPair): Promise<void> {
    const file = path.join(this.options.dir, `${key.kid}.json`);
    const tmp = `${file}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify(key, null, 2), { mode: 0o600 });
    await rename(tmp, file);
  }
}
