import { constants, createCipheriv, createPublicKey, publicEncrypt, randomBytes } from 'node:crypto';

/**
 * The client half of IndexedCP's envelope encryption (docs/ENCRYPTION.md upstream): a random
 * AES-256 key per stream, wrapped with the server's RSA public key (OAEP, SHA-256); each packet
 * sealed with AES-256-GCM under a fresh 96-bit IV, the AAD the JSON {sessionId, seq, codec,
 * timestamp}. Only the wrapped key and sealed packets are ever stored.
 */
export interface SealedPacket {
  ciphertext: Buffer;
  iv: Buffer;
  authTag: Buffer;
  aad: Buffer;
}

export const newSessionKey = (): Buffer => randomBytes(32);
export const newSessionId = (): string => randomBytes(16).toString('hex');

export function wrapSessionKey(sessionKey: Buffer, publicKeyPem: string): Buffer {
  return publicEncrypt(
    { key: createPublicKey(publicKeyPem), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
    sessionKey,
  );
}

export function sealPacket(
  data: Buffer,
  sessionKey: Buffer,
  sessionId: string,
  seq: number,
  now: number,
): SealedPacket {
  const iv = randomBytes(12);
  const aad = Buffer.from(JSON.stringify({ sessionId, seq, codec: 'raw', timestamp: now }));
  const cipher = createCipheriv('aes-256-gcm', sessionKey, iv);
  cipher.setAAD(aad);
  const ciphertext = Buffer.concat([cipher.update(data), cipher.final()]);
  return { ciphertext, iv, authTag: cipher.getAuthTag(), aad };
}
