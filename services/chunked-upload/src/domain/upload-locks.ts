/**
 * One writer per upload. A new request for an upload that is still being written asks the
 * current writer to stop (its client is usually gone: tus clients resume with HEAD + PATCH
 * after a network drop), waits for it to commit what it has, then goes on. Writes are thus
 * serialized, never interleaved, and a dead connection cannot keep an upload locked.
 */
export class UploadLocks implements Locks {
  private readonly held = new Map<string, { released: Promise<void>; preempt: () => void }>();

  async acquire(id: string, preempt: () => void, options: { takeOver: boolean }): Promise<() => void> {
    for (;;) {
      const current = this.held.get(id);
      if (!current) break;
      if (options.takeOver) current.preempt();
      await current.released;
    }
    let release!: () => void;
    const released = new Promise<void>((r) => {
      release = r;
    });
    this.held.set(id, { released, preempt });
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.held.delete(id);
      release();
    };
  }

  isHeld(id: string): boolean {
    return this.held.has(id);
  }

  async tryAcquire(id: string): Promise<(() => void) | undefined> {
    if (this.held.has(id)) return undefined;
    return this.acquire(id, () => undefined, { takeOver: false });
  }

  /** Asks the holder of `id` here, if any, to stop (another replica's request takes over). */
  preempt(id: string): void {
    this.held.get(id)?.preempt();
  }
}

/** What the upload service needs of its locks: these, or ReplicaUploadLocks across replicas. */
export interface Locks {
  acquire(id: string, preempt: () => void, options: { takeOver: boolean }): Promise<() => void>;
  /** The lock only if nobody (here or on another replica) holds it now. */
  tryAcquire(id: string): Promise<(() => void) | undefined>;
  isHeld(id: string): boolean;
}
