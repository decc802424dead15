import {
  constants,
  createDecipheriv,
  createHash,
  createPrivateKey,
  generateKeyPair,
  type KeyObject,
  privateDecrypt,
} from 'node:crypto';
import { promisify } from 'node:util';
import { AppError } from '@qlab/kit';
import { z } from 'zod';

/**
 * IndexedCP's envelope encryption (docs/ENCRYPTION.md upstream): "RSA-OAEP (SHA-256) for key
 * wrapping, AES-256-GCM for data encryption, per-stream ephemeral session keys, IV + AAD for
 * authenticity and uniqueness". The client wraps a random AES-256 key with the server's public
 * key once per stream and sends `{sessionId, kid, wrappedKey, ciphertext, iv, authTag, aad, seq}`
 * per packet, the binary fields base64; the AAD is the JSON `{sessionId, seq, codec, timestamp}`.
 */

export interface ServerKeyPair {
  /** First 16 hex digits of the SHA-256 of the public key's PEM (as the original names keys). */
  kid: string;
  publicKey: string;
  privateKey: string;
  createdAt: number;
  active: boolean;
  /** When it stopped being the active key (qlab's addition; its age for deletion counts from here). */
  retiredAt?: number;
}

export const KID = /^[a-f0-9]{16}$/;
const AES_KEY_BYTES = 32;
const IV_BYTES = 12;
const AUTH_TAG_BYTES = 16;

export function kidOf(publicKeyPem: string): string {
  return createHash('sha256').update(publicKeyPem).digest('hex').slice(0, 16);
}

/** A new RSA key pair, PEM encoded (spki / pkcs8), as the original's generateServerKeyPair. */
export async function newServerKeyPair(modulusLength: number, now: number): Promise<ServerKeyPair> {
  const { publicKey, privateKey } = await promisify(generateKeyPair)('rsa', {
    modulusLength,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return { kid: kidOf(publicKey), publicKey, privateKey, createdAt: now, active: true };
}

export class DecryptionFailed extends AppError {
  constructor(detail: string) {
    super(400, 'DECRYPTION_FAILED', detail);
  }
}

/** Strict base64 of at most `maxBytes` decoded bytes (Buffer.from would skip junk silently). */
const base64 = (field: string, maxBytes: number) =>
  z
    .string({ error: `${field} is required` })
    .max(Math.ceil(maxBytes / 3) * 4 + 4, `${field} is too large`)
    .regex(/^[A-Za-z0-9+/]*={0,2}$/, `${field} is not base64`)
    .transform((s) => Buffer.from(s, 'base64'));

/** One packet's fields, as the original client sends them (single or inside a batch). */
export const packetFields = (maxPlaintext: number) =>
  z.object({
    ciphertext: base64('ciphertext', maxPlaintext),
    iv: base64('iv', IV_BYTES).refine((b) => b.length === IV_BYTES, `iv must be ${IV_BYTES} bytes`),
    authTag: base64('authTag', AUTH_TAG_BYTES).refine(
      (b) => b.length === AUTH_TAG_BYTES,
      `authTag must be ${AUTH_TAG_BYTES} bytes`,
    ),
    aad: base64('aad', 4096),
    seq: z.number().int().min(0).max(999_999_999).default(0),
  });

/** What names the stream: the same on every packet of it. */
export const streamFields = z.object({
  // The upload id is `enc-<sessionId>`, at most 128 characters.
  sessionId: z.string().regex(/^[A-Za-z0-9_-]{1,124}$/, 'sessionId must be 1-124 letters, digits, _ or -'),
  kid: z.string().regex(KID, 'kid must be 16 hex digits (GET /public-key names it)'),
  wrappedKey: base64('wrappedKey', 2048),
  fileName: z.string().min(1).max(4096).optional(),
  /** qlab's addition: the packet count, so the file completes at once (X-Chunk-Total's twin). */
  total: z.number().int().min(1).max(999_999_999).optional(),
});

export type Packet = z.infer<ReturnType<typeof packetFields>>;
export type StreamHeader = z.infer<typeof streamFields>;

/** The AES session key inside a wrapped key; a key that is not ours, or damaged, is refused. */
export function unwrapSessionKey(wrappedKey: Buffer, privateKey: KeyObject | string): Buffer {
  let key: Buffer;
  try {
    key = privateDecrypt(
      {
        key: typeof privateKey === 'string' ? createPrivateKey(privateKey) : privateKey,
        padding: constants.RSA_PKCS1_OAEP_PADDING,
        oaepHash: 'sha256',
      },
      wrappedKey,
    );
  } catch {
    throw new DecryptionFailed('the session key was not wrapped with this server key (or was altered)');
  }
  if (key.length !== AES_KEY_BYTES)
    throw new DecryptionFailed(`the session key is not ${AES_KEY_BYTES} bytes`);
  return key;
}

/**
 * The packet's plaintext. GCM checks the tag over ciphertext and AAD; qlab also checks that the
 * AAD names this stream and this sequence number, so a packet cannot be replayed into another
 * stream or another place in the file (the original only relies on the tag).
 */
export function openPacket(packet: Packet, sessionId: string, sessionKey: Buffer): Buffer {
  let aad: { sessionId?: unknown; seq?: unknown };
  try {
    aad = JSON.parse(packet.aad.toString('utf8')) as typeof aad;
  } catch {
    throw new DecryptionFailed('aad is not JSON');
  }
  if (aad?.sessionId !== sessionId || aad.seq !== packet.seq)
    throw new DecryptionFailed(
      `aad names session ${String(aad?.sessionId)} packet ${String(aad?.seq)}, not this one`,
    );
  try {
    const decipher = createDecipheriv('aes-256-gcm', sessionKey, packet.iv, {
      authTagLength: AUTH_TAG_BYTES,
    });
    decipher.setAAD(packet.aad);
    decipher.setAuthTag(packet.authTag);
    return Buffer.concat([decipher.update(packet.ciphertext), decipher.final()]);
  } catch {
    throw new DecryptionFailed(`packet ${packet.seq} failed authentication: altered, or another key`);
  }
}
