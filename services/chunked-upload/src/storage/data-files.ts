import type { Hash } from 'node:crypto';
import { constants } from 'node:fs';
import {
  type FileHandle,
  link,
  lstat,
  mkdir,
  open,
  readdir,
  realpath,
  rename,
  rm,
  stat,
  truncate,
  unlink,
} from 'node:fs/promises';
import path from 'node:path';
import { ConfigError, conflict } from '@qlab/kit';
import { PathRefused, resolveInside } from '../domain/path-modes';
import { PipelinedWriter } from './pipelined-writer';
import { TooManyBytes, type UploadBytes, type WriteResult } from './upload-bytes';
import { openDirectProbe, WRITE_BUFFER_BYTES, WriteBuffers } from './write-buffers';

export { TooManyBytes, type WriteResult };

/**
 * Where upload bytes live. `dataPath`s are relative: `staging/…` under the service's data dir
 * while an upload arrives, `files/…` under the upload dir for seed-style uploads written in
 * place. Finished files are published into the upload dir without ever overwriting one.
 */
export class DataFiles implements UploadBytes {
  readonly stagingDir: string;
  /** Seed-style uploads grow where they will end, as the seed's server wrote them. */
  readonly inPlace = true;
  private buffers = new WriteBuffers(undefined);

  /** `directIo`: write whole blocks with O_DIRECT where the file system allows it. */
  constructor(
    readonly dataRoot: string,
    readonly uploadDir: string,
    private readonly directIo = true,
  ) {
    this.stagingDir = path.join(dataRoot, 'staging');
  }

  async init(): Promise<void> {
    await mkdir(this.stagingDir, { recursive: true });
    await mkdir(this.uploadDir, { recursive: true });
    // Finished files are published by link() and rename(): both need one file system.
    const [staging, uploads] = await Promise.all([stat(this.stagingDir), stat(this.uploadDir)]);
    if (staging.dev !== uploads.dev)
      throw new ConfigError([
        `UPLOAD_DIR (${this.uploadDir}) is on another file system than DATA_DIR (${this.dataRoot}): uploads are published by rename, which cannot cross file systems. Put both on one (e.g. DATA_DIR on the upload volume)`,
      ]);
    if (this.directIo)
      this.buffers = new WriteBuffers(await openDirectProbe(path.join(this.dataRoot, 'direct-io.probe')));
  }

  /** Whether uploads are written with O_DIRECT (asked for, and the data dir's file system takes it). */
  get directWrites(): boolean {
    return this.buffers.direct;
  }

  async close(): Promise<void> {
    await this.buffers.close();
  }

  stagingPath(id: string): string {
    return `staging/${id}.bin`;
  }

  chunkBufferPath(id: string, index: number): string {
    return `staging/${id}.chunks/${index}.part`;
  }

  abs(dataPath: string): string {
    if (dataPath.startsWith('files/')) return resolveInside(this.uploadDir, dataPath.slice('files/'.length));
    return resolveInside(this.dataRoot, dataPath);
  }

  /** Creates the parent folders of a path in the upload dir, refusing any that leads outside it (symlinks). */
  private async safeParent(relInUploadDir: string): Promise<string> {
    const abs = resolveInside(this.uploadDir, relInUploadDir);
    await mkdir(path.dirname(abs), { recursive: true }).catch((err: NodeJS.ErrnoException) => {
      // A file where a folder of the path should be (a file named "reports", and "reports/x").
      if (err.code === 'ENOTDIR' || err.code === 'EEXIST')
        throw conflict(`a folder on the way to "${relInUploadDir}" is a file`);
      throw err;
    });
    const [realRoot, realParent] = await Promise.all([realpath(this.uploadDir), realpath(path.dirname(abs))]);
    if (realParent !== realRoot && !realParent.startsWith(realRoot + path.sep)) {
      throw new PathRefused(`"${relInUploadDir}" leads outside the upload directory`);
    }
    return abs;
  }

  /**
   * Opens a data file without following a link anywhere on its way: a symbolic link swapped
   * into the upload dir (for a file written in place, or a folder above it) must not send the
   * bytes elsewhere. Node has no openat(), so: the final name is opened with O_NOFOLLOW, the
   * folders are checked to resolve inside the upload dir, and after opening the file must be
   * the one at that path (same device and inode), or it is refused.
   */
  private async openData(dataPath: string, flags: number): Promise<FileHandle> {
    const abs = this.abs(dataPath);
    if (!dataPath.startsWith('files/')) return open(abs, flags);
    const rel = dataPath.slice('files/'.length);
    await this.safeParent(rel);
    let handle: FileHandle;
    try {
      handle = await open(abs, flags | constants.O_NOFOLLOW);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ELOOP')
        throw new PathRefused(`"${rel}" is a symbolic link; uploads never write through one`);
      throw err;
    }
    try {
      await this.safeParent(rel);
      const [opened, there] = await Promise.all([handle.stat(), lstat(abs)]);
      if (opened.ino !== there.ino || opened.dev !== there.dev)
        throw new PathRefused(`"${rel}" changed while it was being opened`);
      return handle;
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  /** Refuses a target whose existing folders resolve outside the upload dir (it creates nothing). */
  async checkTargetFolder(relInUploadDir: string): Promise<void> {
    const abs = resolveInside(this.uploadDir, relInUploadDir);
    let dir = path.dirname(abs);
    // The nearest folder that exists decides where the rest would be created.
    for (;;) {
      const there = await realpath(dir).catch(() => undefined);
      if (there !== undefined) {
        const root = await realpath(this.uploadDir);
        if (there !== root && !there.startsWith(root + path.sep))
          throw new PathRefused(`"${relInUploadDir}" leads outside the upload directory`);
        return;
      }
      if (dir === this.uploadDir || dir === path.dirname(dir)) return;
      dir = path.dirname(dir);
    }
  }

  /** The first folder of `rel` (in the upload dir) that exists as something other than a folder. */
  async fileOnTheWay(rel: string): Promise<string | undefined> {
    const parts = rel.split('/');
    for (let i = 1; i < parts.length; i++) {
      const sub = parts.slice(0, i).join('/');
      const info = await lstat(resolveInside(this.uploadDir, sub)).catch(() => undefined);
      if (!info) return undefined;
      if (!info.isDirectory()) return sub;
    }
    return undefined;
  }

  async existsInUploadDir(rel: string): Promise<boolean> {
    return stat(resolveInside(this.uploadDir, rel)).then(
      () => true,
      () => false,
    );
  }

  /** Creates an empty data file; `exclusive` refuses to reuse an existing one (seed-style in-place files). */
  async createEmpty(dataPath: string): Promise<void> {
    const abs = dataPath.startsWith('files/') ? await this.safeParent(dataPath.slice(6)) : this.abs(dataPath);
    await mkdir(path.dirname(abs), { recursive: true });
    try {
      // O_EXCL already refuses an existing name, links included; O_NOFOLLOW says so twice.
      const handle = await open(
        abs,
        constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY | constants.O_NOFOLLOW,
      );
      await handle.close();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw conflict(`"${dataPath}" already exists`);
      throw err;
    }
  }

  /**
   * Writes a body at `offset`, hashing as it goes, and fsyncs before returning, so what it
   * reports is on disk. Stops with TooManyBytes past `limit`. A body that ends early keeps
   * what arrived (tus: partial progress counts).
   */
  async writeAt(
    dataPath: string,
    offset: number,
    body: AsyncIterable<Buffer>,
    limit: number,
    hashes: Hash[] = [],
  ): Promise<WriteResult> {
    const handle = await this.openData(dataPath, constants.O_RDWR);
    // A second handle for the aligned middle; the upload dir may sit on a file system without O_DIRECT.
    const direct = this.buffers.direct
      ? await this.openData(dataPath, constants.O_WRONLY | constants.O_DIRECT).catch(() => undefined)
      : undefined;
    const writer = new PipelinedWriter(handle, direct, offset, this.buffers);
    let interrupted = false;
    try {
      try {
        for await (const chunk of body) {
          if (writer.received + chunk.length > limit) throw new TooManyBytes();
          for (const h of hashes) h.update(chunk);
          await writer.push(chunk);
        }
      } catch (err) {
        if (err instanceof TooManyBytes || writer.failed) throw err;
        interrupted = true;
      }
      await writer.finish();
      // fdatasync: the bytes and the size, not timestamps; enough for the data to survive a crash.
      // After direct writes it commits the size and flushes the disk's cache.
      if (writer.received > 0) await handle.datasync();
      return { bytes: writer.received, interrupted };
    } finally {
      await writer.release();
      await direct?.close();
      await handle.close();
    }
  }

  /** Appends a whole file (a buffered chunk) at `offset`. */
  async copyInto(fromDataPath: string, dataPath: string, offset: number): Promise<number> {
    // Opened first, so a source that is gone is a rejection here, not an 'error' event on a
    // stream nobody listens to yet (that ended the process).
    const source = await open(this.abs(fromDataPath), 'r');
    try {
      const result = await this.writeAt(
        dataPath,
        offset,
        source.createReadStream({ highWaterMark: WRITE_BUFFER_BYTES, autoClose: false }),
        Number.MAX_SAFE_INTEGER,
      );
      return result.bytes;
    } finally {
      await source.close();
    }
  }

  /**
   * Publishes finished bytes at `targetRel` in the upload dir: truncated to `length` (bytes a
   * crash left past the acknowledged offset go), hard-linked so an existing file is never
   * overwritten (EEXIST → 409), then the staging name is removed.
   */
  async publish(dataPath: string, targetRel: string, length: number): Promise<void> {
    const from = this.abs(dataPath);
    const to = await this.safeParent(targetRel);
    // Publishing again after an attempt that got past the link (its database commit failed, or
    // the process died): the bytes are already in place, so only what was left is done.
    const source = await stat(from).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
    if (!source) {
      const target = await lstat(to).catch(() => undefined);
      if (target?.isFile() && target.size === length) return;
      throw new Error(
        `staging file of ${targetRel} is gone and the target does not hold its ${length} bytes`,
      );
    }
    await truncate(from, length);
    try {
      await link(from, to);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const target = code === 'EEXIST' ? await lstat(to).catch(() => undefined) : undefined;
      // Linked by an earlier attempt that died before the unlink: the same file, not a clash.
      if (!(target && target.ino === source.ino && target.dev === source.dev)) {
        if (code === 'EEXIST' || code === 'EISDIR' || code === 'ENOTDIR')
          throw conflict(`"${targetRel}" already exists`);
        throw err;
      }
    }
    await unlink(from);
    const dir = await open(path.dirname(to), 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }

  /** Moves a data file over another (one rename: the target is replaced in one step). */
  async move(fromDataPath: string, toDataPath: string): Promise<void> {
    await rename(this.abs(fromDataPath), this.abs(toDataPath));
  }

  /** Cuts a data file back to the acknowledged offset (after a chunk that was not accepted). */
  async truncateTo(dataPath: string, length: number): Promise<void> {
    const handle = await this.openData(dataPath, constants.O_WRONLY);
    try {
      await handle.truncate(length);
    } finally {
      await handle.close();
    }
  }

  async remove(dataPath: string): Promise<void> {
    await rm(this.abs(dataPath), { force: true });
  }

  async removeChunkBuffers(id: string): Promise<void> {
    await rm(path.join(this.stagingDir, `${id}.chunks`), { recursive: true, force: true });
  }

  async sizeOf(dataPath: string): Promise<number> {
    return (await stat(this.abs(dataPath))).size;
  }

  async stagingEntries(): Promise<string[]> {
    return readdir(this.stagingDir);
  }

  /** Staging entries (`<id>.bin`, `<id>.chunks`) untouched for `olderThanMs`, with their upload ids. */
  async staleStaging(olderThanMs: number, now = Date.now()): Promise<{ entry: string; id: string }[]> {
    const out: { entry: string; id: string }[] = [];
    for (const entry of await readdir(this.stagingDir).catch(() => [] as string[])) {
      const m = /^([0-9a-f]{32})\.(bin|chunks)$/.exec(entry);
      if (!m) continue;
      const info = await stat(path.join(this.stagingDir, entry)).catch(() => undefined);
      if (info && now - info.mtimeMs > olderThanMs) out.push({ entry, id: m[1]! });
    }
    return out;
  }

  async removeStaging(entry: string): Promise<void> {
    await rm(path.join(this.stagingDir, path.basename(entry)), { recursive: true, force: true });
  }
}
