import {
  constants,
  createCipheriv,
  createPublicKey,
  generateKeyPairSync,
  publicEncrypt,
  randomBytes,
} from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import request from 'supertest';
import { auth, KEY2, type RunningUploads, startUploads, walk } from './helpers';

/**
 * A stream sealed as the original IndexedCP client seals it (lib/crypto-utils.js upstream,
 * written here from its description): AES-256-GCM per packet with a fresh 12-byte IV, the AAD
 * JSON {sessionId, seq, codec, timestamp}, the session key wrapped with RSA-OAEP/SHA-256.
 */
function sealedStream(publicKeyPem: string, kid: string, fileName?: string) {
  const key = randomBytes(32);
  const sessionId = randomBytes(16).toString('hex');
  const wrappedKey = publicEncrypt(
    { key: createPublicKey(publicKeyPem), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
    key,
  ).toString('base64');
  const packet = (data: Buffer, seq: number) => {
    const iv = randomBytes(12);
    const aad = Buffer.from(JSON.stringify({ sessionId, seq, codec: 'raw', timestamp: Date.now() }));
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    cipher.setAAD(aad);
    const ciphertext = Buffer.concat([cipher.update(data), cipher.final()]);
    return {
      ciphertext: ciphertext.toString('base64'),
      iv: iv.toString('base64'),
      authTag: cipher.getAuthTag().toString('base64'),
      aad: aad.toString('base64'),
      seq,
    };
  };
  const header = { sessionId, kid, wrappedKey, ...(fileName ? { fileName } : {}) };
  return {
    sessionId,
    header,
    packet,
    single: (data: Buffer, seq: number) => ({ ...header, ...packet(data, seq) }),
  };
}

const flip = (b64: string, at = 0) => {
  const b = Buffer.from(b64, 'base64');
  b[at] = b[at]! ^ 0x01;
  return b.toString('base64');
};

describe('encrypted IndexedCP uploads (GET /public-key, POST /upload-encrypted[-batch])', () => {
  let up: RunningUploads | undefined;
  let t = 1_767_225_600_000;
  afterEach(async () => {
    await up?.close();
    up = undefined;
  });
  const start = async (extra: Parameters<typeof startUploads>[0] = {}) => {
    up = await startUploads({ pathMode: 'sanitize', encryption: {}, now: () => t, ...extra });
    return up;
  };
  const publicKey = async (s: RunningUploads) =>
    (await request(s.app).get('/public-key').expect(200)).body as {
      publicKey: string;
      kid: string;
      expiresAt: number;
    };
  const send = (s: RunningUploads, body: object, key = auth) =>
    request(s.app).post('/upload-encrypted').set(key).send(body);

  it('serves the public key without an API key, and stays off unless asked for', async () => {
    const s = await start();
    const key = await publicKey(s);
    expect(key.kid).toMatch(/^[a-f0-9]{16}$/);
    expect(key.publicKey).toContain('BEGIN PUBLIC KEY');
    expect(key.expiresAt).toBe(t + 30 * 24 * 3600 * 1000);
    await request(s.app).post('/upload-encrypted').send({}).expect(401);
    await request(s.app).post('/rotate-keys').expect(401);
    // The key file is private, in the original's format.
    const [file] = readdirSync(path.join(s.dir, 'keys'));
    expect(file).toBe(`${key.kid}.json`);
    expect(JSON.parse(readFileSync(path.join(s.dir, 'keys', file!), 'utf8'))).toMatchObject({
      kid: key.kid,
      active: true,
    });
    await s.close();
    up = await startUploads();
    await request(up.app).get('/public-key').expect(401);
    await request(up.app).post('/upload-encrypted').set(auth).send({}).expect(404);
  });

  it('decrypts packets sent one by one as the original sends them, and completes when idle', async () => {
    const s = await start();
    const { kid, publicKey: pem } = await publicKey(s);
    const stream = sealedStream(pem, kid, './secret.csv');
    const parts = [randomBytes(5000), randomBytes(5000), randomBytes(3)];
    for (const [seq, data] of parts.entries()) {
      const res = await send(s, stream.single(data, seq)).expect(200);
      expect(res.body).toMatchObject({
        message: 'Packet decrypted and saved',
        sessionId: stream.sessionId,
        seq,
      });
      expect(res.body.actualFilename).toBe('secret.csv');
    }
    t += 31_000;
    expect(await s.service.sweepIdle()).toBe(1);
    expect(readFileSync(path.join(s.uploadDir, 'secret.csv')).equals(Buffer.concat(parts))).toBe(true);
    // A repeat of a packet is recognised; a packet after the end is told so.
    const rep = await send(s, stream.single(parts[0]!, 0)).expect(200);
    expect(rep.body.message).toBe('Chunk already received');
    expect((await send(s, stream.single(parts[0]!, 3)).expect(409)).body.code).toBe(
      'UPLOAD_ALREADY_COMPLETE',
    );
  });

  it('completes at once when the packets carry a total (our client), and takes them out of order', async () => {
    const s = await start();
    const { kid, publicKey: pem } = await publicKey(s);
    const stream = sealedStream(pem, kid, 'run.bin');
    const parts = [randomBytes(100), randomBytes(100)];
    await send(s, { ...stream.single(parts[1]!, 1), total: 2 }).expect(200);
    const done = await send(s, { ...stream.single(parts[0]!, 0), total: 2 }).expect(200);
    expect(done.body.complete).toBe(true);
    expect(readFileSync(path.join(s.uploadDir, 'run.bin')).equals(Buffer.concat(parts))).toBe(true);
  });

  it('streams a batch of packets (the original client batches runs of them)', async () => {
    const s = await start();
    const { kid, publicKey: pem } = await publicKey(s);
    const stream = sealedStream(pem, kid, 'batch.bin');
    const parts = Array.from({ length: 40 }, () => randomBytes(4096));
    const res = await request(s.app)
      .post('/upload-encrypted-batch')
      .set(auth)
      .send({ ...stream.header, packets: parts.map((p, i) => stream.packet(p, i)) })
      .expect(200);
    expect(res.body).toMatchObject({
      message: 'Packets decrypted and saved',
      packets: 40,
      receivedChunks: 40,
    });
    t += 31_000;
    await s.service.sweepIdle();
    expect(readFileSync(path.join(s.uploadDir, 'batch.bin')).equals(Buffer.concat(parts))).toBe(true);
  });

  it('refuses malformed batches with a problem, and keeps the packets before a bad one', async () => {
    const s = await start();
    const { kid, publicKey: pem } = await publicKey(s);
    const stream = sealedStream(pem, kid, 'b.bin');
    const batch = (body: string | Buffer) =>
      request(s.app).post('/upload-encrypted-batch').set(auth).type('application/json').send(body);
    const good = stream.packet(Buffer.from('ok'), 0);
    expect(
      (await batch(JSON.stringify({ packets: [good], ...stream.header })).expect(400)).body.detail,
    ).toContain('sessionId');
    await batch('{"sessionId": ').expect(400);
    await batch('[1,2]').expect(400);
    await batch(JSON.stringify({ ...stream.header, packets: [[good]] })).expect(400);
    await batch(
      JSON.stringify({ ...stream.header, packets: [{ ...good, iv: { deep: { deeper: 1 } } }] }),
    ).expect(400);
    await batch(JSON.stringify({ ...stream.header, nested: { a: 1 }, packets: [good] })).expect(400);
    await batch(
      Buffer.concat([Buffer.from('{"sessionId":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]),
    ).expect(400);
    await batch(JSON.stringify({ ...stream.header, packets: [] })).expect(400);
    const tampered = {
      ...stream.packet(Buffer.from('two'), 1),
      ciphertext: flip(stream.packet(Buffer.from('x'), 1).ciphertext),
    };
    const partial = await batch(JSON.stringify({ ...stream.header, packets: [good, tampered] })).expect(400);
    expect(partial.body).toMatchObject({ code: 'DECRYPTION_FAILED', savedPackets: 1 });
    await request(s.app).post('/upload-encrypted-batch').set(auth).type('text/plain').send('x').expect(415);
  });

  it('refuses tampered packets, replays into another place, and a wrong key, writing nothing', async () => {
    const s = await start();
    const { kid, publicKey: pem } = await publicKey(s);
    const stream = sealedStream(pem, kid, 'victim.bin');
    const p0 = stream.single(Buffer.from('first packet'), 0);
    const refusals: [string, object, string][] = [
      ['ciphertext', { ...p0, ciphertext: flip(p0.ciphertext) }, 'DECRYPTION_FAILED'],
      ['authTag', { ...p0, authTag: flip(p0.authTag) }, 'DECRYPTION_FAILED'],
      ['iv', { ...p0, iv: flip(p0.iv) }, 'DECRYPTION_FAILED'],
      ['aad', { ...p0, aad: flip(p0.aad, 3) }, 'DECRYPTION_FAILED'],
      // A genuine packet 0 replayed as packet 5: the tag holds, the AAD says otherwise.
      ['replayed seq', { ...p0, seq: 5 }, 'DECRYPTION_FAILED'],
      ['another session', { ...p0, sessionId: 'other-session' }, 'DECRYPTION_FAILED'],
      ['unknown kid', { ...p0, kid: '0123456789abcdef' }, 'UNKNOWN_KEY_ID'],
      ['short iv', { ...p0, iv: Buffer.alloc(8).toString('base64') }, 'INVALID_INPUT'],
      ['not base64', { ...p0, ciphertext: 'not*base64' }, 'INVALID_INPUT'],
      ['no wrapped key', { ...p0, wrappedKey: undefined }, 'INVALID_INPUT'],
    ];
    // A session key wrapped with some other RSA key, claiming the server's kid.
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({
      type: 'spki',
      format: 'pem',
    });
    const foreign = sealedStream(String(other), kid, 'victim.bin').single(Buffer.from('x'), 0);
    refusals.push(['wrong key', foreign, 'DECRYPTION_FAILED']);
    for (const [label, body, code] of refusals) {
      const res = await send(s, body);
      expect([label, res.status, res.body.code]).toEqual([label, 400, code]);
    }
    expect(walk(s.uploadDir)).toEqual([]);
    await send(s, p0).expect(200);
    expect(readFileSync(path.join(s.uploadDir, 'victim.bin'), 'utf8')).toBe('first packet');
  });

  it("keeps one caller's stream from another caller's", async () => {
    const s = await start();
    const { kid, publicKey: pem } = await publicKey(s);
    const stream = sealedStream(pem, kid, 'mine.bin');
    await send(s, stream.single(Buffer.from('AAA'), 0)).expect(200);
    // Someone else with the stream's packets (but their own key) gets a file of their own.
    const theirs = await send(s, stream.single(Buffer.from('BBB'), 1), {
      Authorization: `Bearer ${KEY2}`,
    }).expect(200);
    expect(theirs.body.receivedChunks).toBe(0);
    expect(readFileSync(path.join(s.uploadDir, 'mine.bin'), 'utf8')).toBe('AAA');
  });

  it('decrypts packets sealed before a key rotation, and keeps keys across a restart', async () => {
    const s = await start();
    const old = await publicKey(s);
    const stream = sealedStream(old.publicKey, old.kid, 'offline.bin');
    const queued = stream.single(Buffer.from('sealed while offline'), 0);
    const rotated = await request(s.app).post('/rotate-keys').set(auth).expect(200);
    expect(rotated.body.newKeyId).not.toBe(old.kid);
    expect((await publicKey(s)).kid).toBe(rotated.body.newKeyId);
    await send(s, { ...queued, total: 1 }).expect(200);
    expect(readFileSync(path.join(s.uploadDir, 'offline.bin'), 'utf8')).toBe('sealed while offline');
    const keysDir = path.join(s.dir, 'keys');
    expect(readdirSync(keysDir).sort()).toEqual([`${old.kid}.json`, `${rotated.body.newKeyId}.json`].sort());

    // A restart keeps both; past UPLOAD_ENCRYPTION_MAX_KEY_AGE the inactive one goes.
    const again = await startUploads({ encryption: { keysDir }, now: () => t });
    try {
      expect((await publicKey(again)).kid).toBe(rotated.body.newKeyId);
      const late = sealedStream(old.publicKey, old.kid, 'late.bin').single(Buffer.from('late'), 0);
      await send(again, { ...late, total: 1 }).expect(200);
    } finally {
      await again.close();
    }
    t += 91 * 24 * 3600 * 1000;
    const later = await startUploads({ encryption: { keysDir }, now: () => t });
    try {
      expect(readdirSync(keysDir)).toEqual([`${rotated.body.newKeyId}.json`]);
      const stale = sealedStream(old.publicKey, old.kid, 'stale.bin').single(Buffer.from('x'), 0);
      expect((await send(later, stale).expect(400)).body.code).toBe('UNKNOWN_KEY_ID');
    } finally {
      await later.close();
    }
  });

  it('refuses a single packet body above the packet limit before reading it', async () => {
    const s = await start();
    const res = await request(s.app)
      .post('/upload-encrypted')
      .set(auth)
      .set('Content-Type', 'application/json')
      .set('Content-Length', String(64 * 1024 * 1024))
      .send('{}')
      .catch((err: { response?: request.Response }) => err.response!);
    expect(res.status).toBe(413);
  });
});
