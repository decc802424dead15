import { type RunningGateway, startGateway } from './helpers';

const ADMIN = 'me-admin-0123456789abcdef';
const WRITE_ONLY = 'me-write-0123456789abcdef';
const READER = 'me-read-0123456789abcdefg';

describe('GET /api/keys/me', () => {
  let gw: RunningGateway;
  beforeAll(async () => {
    gw = await startGateway({
      keys: [
        [ADMIN, ['read', 'write', 'admin']],
        [WRITE_ONLY, ['write']],
        [READER, ['read']],
      ],
    });
  });
  afterAll(() => gw.close());
  const me = (headers: Record<string, string> = {}, path = '/api/keys/me') =>
    fetch(`${gw.url}${path}`, { headers });

  it("answers the caller's own key, whatever its scopes, and nothing secret", async () => {
    for (const [key, scopes] of [
      [READER, ['read']],
      [WRITE_ONLY, ['write']],
      [ADMIN, ['read', 'write', 'admin']],
    ] as const) {
      const res = await me({ 'X-API-Key': key });
      expect(res.status).toBe(200);
      expect(res.headers.get('cache-control')).toBe('no-store');
      const body = (await res.json()) as Record<string, unknown>;
      expect(body).toMatchObject({ scopes, name: `test ${scopes.join('+')}`, prefix: key.slice(0, 12) });
      expect(Object.keys(body).sort()).toEqual([
        'created_at',
        'id',
        'last_used_at',
        'name',
        'prefix',
        'scopes',
      ]);
      expect(JSON.stringify(body)).not.toContain(key);
    }
    // Bearer works as everywhere else.
    expect((await me({ Authorization: `Bearer ${READER}` })).status).toBe(200);
  });

  it('refuses without a valid key, and after the key is revoked', async () => {
    expect((await me()).status).toBe(401);
    expect((await me({ 'X-API-Key': 'me-nope-0123456789abcdefgh' })).status).toBe(401);
    const made = await gw.keys.create('short-lived', ['read']);
    expect((await me({ 'X-API-Key': made.key })).status).toBe(200);
    await gw.keys.revoke(made.info.id);
    expect((await me({ 'X-API-Key': made.key })).status).toBe(401);
  });

  it('is matched case-sensitively, and the admin list stays admin-only', async () => {
    expect((await me({ 'X-API-Key': READER }, '/api/keys/ME')).status).toBe(404);
    expect((await me({ 'X-API-Key': READER }, '/api/keys')).status).toBe(403);
  });
});
