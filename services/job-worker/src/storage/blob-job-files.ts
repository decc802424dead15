import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type BlobStore, decodeKeyPath, encodeKeyPath } from '@qlab/blob-store';
import { AppError, conflict, notFound, serviceUnavailable } from '@qlab/kit';
import {
  checkJobId,
  type JobFiles,
  jobPathUnder,
  jobRelativePath,
  measured,
  type SavedJobFile,
  WorkspacePathRefused,
} from './workspace';

/**
 * A job's files as objects, `jobs/<id>/<path>` (each part encoded as blob-store's encodeKeyPath
 * does: `input/my file.csv` → `jobs/<id>/input/my_20file.csv`), so API replicas on one queue
 * serve every job's files. A save streams into the store (S3: 8 MiB parts, four in flight) with
 * its SHA-256 computed on the way and is visible only once whole; a refused one leaves nothing.
 * A worker in the API's process runs a job in a local copy (checkout) whose outputs go back
 * to the store (checkin), as a remote worker's do over HTTP.
 */
export class BlobJobFiles implements JobFiles {
  readonly location: string;

  constructor(
    private readonly blobs: BlobStore,
    /** Where local copies for in-process workers go (emptied at start by the caller). */
    private readonly workDir: string,
  ) {
    this.location = `${blobs.location}/jobs`;
  }

  private prefix(jobId: string): string {
    checkJobId(jobId);
    return `jobs/${jobId}`;
  }

  private key(jobId: string, rel: string): string {
    try {
      return encodeKeyPath(this.prefix(jobId), rel);
    } catch (err) {
      if (err instanceof RangeError)
        throw new WorkspacePathRefused(`"${rel.slice(0, 60)}" cannot be stored: ${err.message}`);
      throw err;
    }
  }

  /** Nothing to create: a job's prefix exists once it holds a file. */
  async create(jobId: string): Promise<void> {
    checkJobId(jobId);
  }

  resolveUnder(jobId: string, folder: 'input' | 'output', relativePath: string): void {
    this.key(jobId, jobPathUnder(folder, relativePath));
  }

  async save(
    jobId: string,
    relativePath: string,
    source: Buffer | string | Readable,
    maxBytes = Number.POSITIVE_INFINITY,
  ): Promise<SavedJobFile> {
    // The store failing (S3 down or stalled) is a 503: not the caller's fault, nor a bug here.
    return this.store(jobId, relativePath, source, maxBytes).catch((err: unknown) => {
      throw err instanceof AppError
        ? err
        : serviceUnavailable(`the file store failed: ${(err as Error)?.message ?? err}`);
    });
  }

  private async store(
    jobId: string,
    relativePath: string,
    source: Buffer | string | Readable,
    maxBytes: number,
  ): Promise<SavedJobFile> {
    const rel = jobRelativePath(relativePath);
    const key = this.key(jobId, rel);
    // As on a file system: a file cannot be where a folder is, nor under a file.
    const parts = rel.split('/');
    for (let i = 1; i < parts.length; i++)
      if (await this.blobs.head(this.key(jobId, parts.slice(0, i).join('/'))))
        throw conflict(`"${relativePath}": a file is where a folder would go`);
    for await (const _ of this.blobs.list(`${key}/`)) throw conflict(`"${relativePath}" is a folder`);
    const body = measured(source, maxBytes);
    const counted = new PassThrough();
    const feeding = pipeline(body.stream, body.measure, counted);
    // Either failing fails both: a put of a body that broke is aborted, and nothing is stored.
    const [fed, put] = await Promise.allSettled([feeding, this.blobs.put(key, counted)]);
    if (fed.status === 'rejected') {
      if (put.status === 'fulfilled') await this.blobs.delete(key);
      throw fed.reason;
    }
    // The store failing (S3 down or stalled) is a 503, not the caller's fault nor ours.
    if (put.status === 'rejected')
      throw put.reason instanceof AppError
        ? put.reason
        : serviceUnavailable(
            `the file store failed: ${String((put.reason as Error)?.message ?? put.reason)}`,
          );
    const sha256 = body.sha256();
    return { relative_path: rel, size: body.size(), sha256, hash: sha256 };
  }

  async open(jobId: string, relativePath: string): Promise<{ stream: Readable; size: number }> {
    const key = this.key(jobId, jobRelativePath(relativePath));
    const info = await this.blobs.head(key);
    const stream = info ? await this.blobs.get(key) : undefined;
    if (!info || !stream) throw notFound(`job ${jobId} has no file ${relativePath}`);
    return { stream, size: info.size };
  }

  async list(jobId: string): Promise<{ path: string; size: number }[]> {
    const prefix = this.prefix(jobId);
    const out: { path: string; size: number }[] = [];
    for await (const o of this.blobs.list(`${prefix}/`))
      out.push({ path: decodeKeyPath(prefix, o.key), size: o.size });
    return out.sort((a, b) => a.path.localeCompare(b.path));
  }

  async remove(jobId: string): Promise<void> {
    const prefix = this.prefix(jobId);
    for await (const o of this.blobs.list(`${prefix}/`)) await this.blobs.delete(o.key);
  }

  async checkout(jobId: string): Promise<string> {
    checkJobId(jobId);
    const dir = path.join(this.workDir, `${jobId}-${randomUUID()}`);
    await mkdir(path.join(dir, 'input'), { recursive: true });
    await mkdir(path.join(dir, 'output'), { recursive: true });
    try {
      for (const f of await this.list(jobId)) {
        const target = path.join(dir, ...jobRelativePath(f.path).split('/'));
        await mkdir(path.dirname(target), { recursive: true });
        // The listing said it is there: one GET, no HEAD first (open() needs the size; this does not).
        const stream = await this.blobs.get(this.key(jobId, f.path));
        if (!stream) throw notFound(`job ${jobId} has no file ${f.path}`);
        await pipeline(stream, createWriteStream(target));
      }
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
    return dir;
  }

  async discard(dir: string): Promise<void> {
    await rm(dir, { recursive: true, force: true });
  }

  async checkin(jobId: string, dir: string): Promise<void> {
    const walk = async (d: string): Promise<string[]> => {
      const found: string[] = [];
      for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
        const p = path.join(d, e.name);
        found.push(...(e.isDirectory() ? await walk(p) : [p]));
      }
      return found;
    };
    try {
      for (const file of await walk(path.join(dir, 'output')))
        await this.save(jobId, path.relative(dir, file).split(path.sep).join('/'), file);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
}
