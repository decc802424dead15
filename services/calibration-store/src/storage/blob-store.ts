import { createReadStream, type ReadStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import path from 'node:path';

const SHA256 = /^[0-9a-f]{64}$/;

/**
 * Archives on disk, content-addressed by SHA-256: identical archives are stored once.
 * Bytes arrive in a temp file in the same filesystem and are renamed into place, so a
 * reader never sees a half-written archive. Only this process writes under `root`.
 */
export class BlobStore {
  readonly tmpDir: string;
  private readonly blobDir: string;
  private readonly locks = new Map<string, Promise<void>>();

  constructor(readonly root: string) {
    this.tmpDir = path.join(root, 'tmp');
    this.blobDir = path.join(root, 'archives');
  }

  /** Creates the folders and removes temp files a crashed process left behind. */
  async init(): Promise<void> {
    await mkdir(this.blobDir, { recursive: true });
    await rm(this.tmpDir, { recursive: true, force: true });
    await mkdir(this.tmpDir, { recursive: true });
  }

  pathOf(sha256: string): string {
    if (!SHA256.test(sha256)) throw new Error(`not a sha256: ${sha256}`);
    return path.join(this.blobDir, sha256.slice(0, 2), sha256.slice(2, 4), `${sha256}.zip`);
  }

  async exists(sha256: string): Promise<boolean> {
    return stat(this.pathOf(sha256)).then(
      () => true,
      () => false,
    );
  }

  /** Moves a fully written, fsynced temp file into place; if the content is already stored, drops the temp file. */
  async commit(tempFile: string, sha256: string): Promise<void> {
    const final = this.pathOf(sha256);
    if (await this.exists(sha256)) {
      await unlink(tempFile);
      return;
    }
    const dir = path.dirname(final);
    await mkdir(dir, { recursive: true });
    await rename(tempFile, final);
    // Make the rename itself durable.
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }

  openRead(sha256: string, range?: { start: number; end: number }): ReadStream {
    return createReadStream(this.pathOf(sha256), range);
  }

  async remove(sha256: string): Promise<void> {
    await rm(this.pathOf(sha256), { force: true });
  }

  /** Runs `fn` while no other call for the same content runs (commit vs. delete races). */
  async withLock<T>(sha256: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(sha256) ?? Promise.resolve();
    let release!: () => void;
    const current = new Promise<void>((r) => {
      release = r;
    });
    const chained = previous.then(() => current);
    this.locks.set(sha256, chained);
    await previous;
    try {
      return await fn();
    } finally {
      release();
      if (this.locks.get(sha256) === chained) this.locks.delete(sha256);
    }
  }

  /** Temp files present now (tests use this to prove nothing half-written stays behind). */
  async tempFiles(): Promise<string[]> {
    return readdir(this.tmpDir);
  }
}
