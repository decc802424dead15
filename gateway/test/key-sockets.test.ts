import path from 'node:path';
import { PassThrough } from 'node:stream';
import { openDatabase, silentLogger } from '@qlab/kit';
import { tempDir, waitFor } from '@qlab/testkit';
import { KeySockets } from '../src/key-sockets';
import { KeyStore, keyMigrations } from '../src/keys';

/**
 * The review found a revocation that lands while a WebSocket is being authenticated left the
 * socket open for good: the revocation found nothing to close, and nothing looked again.
 */
describe('the WebSockets of each key', () => {
  const tmp = tempDir('qlab-key-sockets-');
  afterAll(() => tmp.cleanup());

  it('closes a socket registered after its key was revoked, and keeps one whose key is live', async () => {
    const knex = await openDatabase({
      target: { client: 'sqlite', filename: path.join(tmp.dir, 'keys.db') },
      migrations: keyMigrations,
    });
    try {
      const keys = new KeyStore(knex);
      const open = new KeySockets(keys, silentLogger());
      const live = (await keys.create('live', ['read'])).info.id;
      const revoked = (await keys.create('revoked', ['read'])).info.id;
      // Authenticated a moment ago; revoked since, before the socket was registered.
      await keys.revoke(revoked);
      const late = new PassThrough();
      const fine = new PassThrough();
      open.add(revoked, late);
      open.add(live, fine);
      await waitFor(() => late.destroyed, 2000);
      await new Promise((r) => setTimeout(r, 100));
      expect(fine.destroyed).toBe(false);
      // A revocation through the store still ends the live one.
      await keys.revoke(live);
      await waitFor(() => fine.destroyed, 2000);
    } finally {
      await knex.destroy();
    }
  });
});
