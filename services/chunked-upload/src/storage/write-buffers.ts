import { constants } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';

/** Direct writes start and end on multiples of this (the page size; covers 512- and 4096-byte sectors). */
export const DIRECT_ALIGN = 4096;
/** One write buffer; an upload in progress holds up to three. */
export const WRITE_BUFFER_BYTES = 4 * 1024 * 1024;
const MAX_IDLE = 6;
/** Buffers in the whole process (64 MiB); past them, uploads write through the page cache. */
const MAX_LIVE = 16;

/**
 * Checks whether `probePath`'s file system takes O_DIRECT writes; returns the open probe file
 * when it does. tmpfs and some network file systems refuse O_DIRECT with EINVAL.
 */
export async function openDirectProbe(probePath: string): Promise<FileHandle | undefined> {
  try {
    return await open(probePath, constants.O_WRONLY | constants.O_CREAT | constants.O_DIRECT, 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EINVAL') return undefined;
    throw err;
  }
}

/**
 * Write buffers shared by the uploads of one process. For O_DIRECT a buffer's memory must be
 * aligned, which Node cannot ask for, so each one is cut from a slightly larger allocation at
 * the first offset the kernel accepts for a direct write to the probe file. Buffers are reused
 * (a few are kept idle), so the probe runs only while the pool grows. There are at most
 * `maxLive`: with many uploads at once, memory stays bounded and the uploads past the budget
 * write through the page cache instead (never waiting for a buffer a stalled client holds).
 */
export class WriteBuffers {
  private idle: Buffer[] = [];
  private live = 0;

  /** `probe`: an O_DIRECT handle on a scratch file; without it buffers need no alignment. */
  constructor(
    private readonly probe: FileHandle | undefined,
    private readonly maxLive = MAX_LIVE,
  ) {}

  get direct(): boolean {
    return this.probe !== undefined;
  }

  /** A buffer, or undefined when the process already holds its budget of them. */
  async take(): Promise<Buffer | undefined> {
    const reused = this.idle.pop();
    if (reused) return reused;
    if (this.live >= this.maxLive) return undefined;
    this.live++;
    try {
      return await this.allocate();
    } catch (err) {
      this.live--;
      throw err;
    }
  }

  private async allocate(): Promise<Buffer> {
    if (!this.probe) return Buffer.allocUnsafeSlow(WRITE_BUFFER_BYTES);
    const raw = Buffer.allocUnsafeSlow(WRITE_BUFFER_BYTES + DIRECT_ALIGN);
    // malloc aligns to 16 bytes at least, so one of these offsets is block-aligned.
    for (let at = 0; at < DIRECT_ALIGN; at += 16) {
      try {
        await this.probe.write(raw, at, DIRECT_ALIGN, 0);
        return raw.subarray(at, at + WRITE_BUFFER_BYTES);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
      }
    }
    // Never seen; the writer falls back to buffered writes when a direct one is refused.
    return raw.subarray(0, WRITE_BUFFER_BYTES);
  }

  give(buffer: Buffer): void {
    if (this.idle.length < MAX_IDLE) this.idle.push(buffer);
    else this.live--;
  }

  async close(): Promise<void> {
    this.idle = [];
    await this.probe?.close();
  }
}
