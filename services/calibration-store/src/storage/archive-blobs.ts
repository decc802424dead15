import { mkdir, readdir, rm } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { BlobStore, ByteRange } from '@qlab/blob-store';
import { rangedZipSource, type ZipSource } from '../domain/zip-reader';

const SHA256 = /^[0-9a-f]{64}$/;

/**
 * Archives in the blob store (the filesystem under DATA_DIR by default, S3 with BLOB_STORE_URL),
 * content-addressed by SHA-256 so identical archives are stored once:
 * `archives/<2 hex>/<2 hex>/<sha256>.zip`, the layout earlier versions kept on disk.
 *
 * Uploads first land in a local temp folder (`tmpDir`): the SHA-256 and the zip check need the
 * whole file before anything is stored, and a refused upload never reaches the store.
 */
export class ArchiveBlobs {
  constructor(
    readonly store: BlobStore,
    /** Local folder for uploads being received and checked; emptied at start. */
    readonly tmpDir: string,
  ) {}

  async init(): Promise<void> {
    await rm(this.tmpDir, { recursive: true, force: true });
    await mkdir(this.tmpDir, { recursive: true });
  }

  static keyOf(sha256: string): string {
    if (!SHA256.test(sha256)) throw new Error(`not a sha256: ${sha256}`);
    return `archives/${sha256.slice(0, 2)}/${sha256.slice(2, 4)}/${sha256}.zip`;
  }

  async exists(sha256: string): Promise<boolean> {
    return (await this.store.head(ArchiveBlobs.keyOf(sha256))) !== undefined;
  }

  /** Takes a checked temp file in (renamed on the filesystem, uploaded to S3). */
  async moveIn(tempFile: string, sha256: string): Promise<void> {
    await this.store.moveFile(ArchiveBlobs.keyOf(sha256), tempFile, { contentType: 'application/zip' });
  }

  /** The archive's bytes or a range of them; undefined when the content is missing. */
  open(sha256: string, range?: ByteRange): Promise<Readable | undefined> {
    return this.store.get(ArchiveBlobs.keyOf(sha256), range);
  }

  /** Random access for the zip reader (the entries listing), by ranged reads of the store. */
  zipSource(sha256: string, size: number): ZipSource {
    return rangedZipSource(size, (start, end) => this.open(sha256, { start, end }));
  }

  async remove(sha256: string): Promise<void> {
    await this.store.delete(ArchiveBlobs.keyOf(sha256));
  }

  /** Temp files present now (tests use this to prove nothing half-written stays behind). */
  async tempFiles(): Promise<string[]> {
    return readdir(this.tmpDir);
  }
}
