import type { Duplex } from 'node:stream';
import type { Logger } from '@qlab/kit';
import type { KeyStore } from './keys';

const RECHECK_RETRY_MS = 1000;

/**
 * The WebSockets open under each key, so a revocation ends them too: a revoked key must not keep
 * a live feed it opened before. The key store says when a key is revoked (here, or on another
 * replica through PostgreSQL), and when revocations may have been missed (its listener came
 * back), after which every open key is checked again.
 */
export class KeySockets {
  private readonly byKey = new Map<string, Set<Duplex>>();

  constructor(
    private readonly keys: KeyStore,
    private readonly logger: Logger,
  ) {
    keys.watch(
      (id) => this.end(id),
      () => this.recheckUntilDone(),
    );
  }

  /** After a gap in the notifications: every open key checked, tried again each second until it works. */
  private recheckUntilDone(): void {
    this.recheck().catch((err: unknown) => {
      this.logger.warn({ err }, 'could not re-check the keys of open WebSockets; trying again');
      setTimeout(() => this.recheckUntilDone(), RECHECK_RETRY_MS).unref();
    });
  }

  add(keyId: string, socket: Duplex): void {
    let set = this.byKey.get(keyId);
    if (!set) {
      set = new Set();
      this.byKey.set(keyId, set);
    }
    set.add(socket);
    socket.once('close', () => {
      set.delete(socket);
      if (set.size === 0 && this.byKey.get(keyId) === set) this.byKey.delete(keyId);
    });
    // A revocation that landed while this socket was being authenticated found nothing to
    // close: asked again now that it is registered. Unknown is closed too (fail closed).
    this.keys.active([keyId]).then(
      (active) => {
        if (!active.has(keyId)) this.end(keyId);
      },
      (err: unknown) => {
        this.logger.warn({ err, keyId }, 'could not confirm the key of a new WebSocket; closing it');
        socket.destroy();
      },
    );
  }

  private end(keyId: string): void {
    const set = this.byKey.get(keyId);
    if (!set) return;
    this.logger.info({ keyId, sockets: set.size }, 'key revoked: closing its WebSockets');
    for (const socket of set) socket.destroy();
    this.byKey.delete(keyId);
  }

  private async recheck(): Promise<void> {
    const ids = [...this.byKey.keys()];
    const active = await this.keys.active(ids);
    for (const id of ids) if (!active.has(id)) this.end(id);
  }
}
