import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream, type ReadStream } from 'node:fs';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { AppError, conflict, notFound, payloadTooLarge } from '@qlab/kit';

/** The seed's SavedJobFile (relative_path, size, hash), with the hash also named for its algorithm. */
export interface SavedJobFile {
  relative_path: string;
  size: number;
  sha256: string;
  /** The same SHA-256, under the seed's name. */
  hash: string;
}

const JOB_ID = /^[A-Za-z0-9][\w.-]{0,63}$/;
/** Longest name of one file or folder (file systems allow 255 bytes; the temp suffix needs room). */
const MAX_NAME_BYTES = 200;

export class WorkspacePathRefused extends AppError {
  constructor(detail: string) {
    super(400, 'PATH_REFUSED', detail);
  }
}

/**
 * A job's files wherever they live: folders on this host (JobWorkspace, the default) or objects
 * in a blob store shared by API replicas (BlobJobFiles, BLOB_STORE_URL). Paths are relative to
 * the job (`input/…`, `output/…`) and checked by the same rules in both.
 */
export interface JobFiles {
  /** Where the files are, for the log (a folder, or `s3://bucket/prefix/jobs`). */
  readonly location: string;
  create(jobId: string): Promise<void>;
  /** Refuses a path outside `folder` of the job (400), without touching anything. */
  resolveUnder(jobId: string, folder: 'input' | 'output', relativePath: string): void;
  save(
    jobId: string,
    relativePath: string,
    source: Buffer | string | Readable,
    maxBytes?: number,
  ): Promise<SavedJobFile>;
  open(jobId: string, relativePath: string): Promise<{ stream: Readable; size: number }>;
  list(jobId: string): Promise<{ path: string; size: number }[]>;
  remove(jobId: string): Promise<void>;
  /** A local folder with the job's files, for a worker in this process to run it in. */
  checkout(jobId: string): Promise<string>;
  /** Makes what the job wrote under output/ in `dir` its outputs, and lets the folder go. */
  checkin(jobId: string, dir: string): Promise<void>;
  /** Lets a checked-out folder go without keeping what is in it (the job failed or was cancelled). */
  discard(dir: string): Promise<void>;
}

/**
 * The job-relative path of `relativePath` (posix, NFKC), or 400: NUL bytes, absolute paths, a
 * way out of the job, over-long names and `.part` names (the folder store's temp files) are refused.
 */
export function jobRelativePath(relativePath: string): string {
  if (relativePath.includes('\0')) throw new WorkspacePathRefused('the path contains a NUL byte');
  if (path.isAbsolute(relativePath) || /^[a-z]:/i.test(relativePath))
    throw new WorkspacePathRefused(`"${relativePath}" is absolute`);
  const root = path.resolve('/job');
  const target = path.resolve(root, relativePath.normalize('NFKC'));
  if (!target.startsWith(root + path.sep))
    throw new WorkspacePathRefused(`"${relativePath}" leaves the job's folder`);
  const names = path.relative(root, target).split(path.sep);
  if (names.some((n) => Buffer.byteLength(n) > MAX_NAME_BYTES))
    throw new WorkspacePathRefused(
      `a part of "${relativePath.slice(0, 40)}…" is longer than ${MAX_NAME_BYTES} bytes`,
    );
  if (names.at(-1)!.endsWith('.part')) throw new WorkspacePathRefused('file names may not end in .part');
  return names.join('/');
}

/** jobRelativePath, and the path must lie inside `folder` (input or output). */
export function jobPathUnder(folder: 'input' | 'output', relativePath: string): string {
  const rel = jobRelativePath(relativePath);
  if (!rel.startsWith(`${folder}/`))
    throw new WorkspacePathRefused(`"${relativePath}" is not inside ${folder}/`);
  return rel;
}

/**
 * A file to save, as a stream, and the step that counts and hashes it on the way: more than
 * `maxBytes` is a 413 and stops the save. Both stores save through this.
 */
export function measured(source: Buffer | string | Readable, maxBytes: number) {
  const hash = createHash('sha256');
  let size = 0;
  const stream = Buffer.isBuffer(source)
    ? Readable.from([source])
    : typeof source === 'string'
      ? createReadStream(source)
      : source;
  return {
    stream,
    measure: async function* (chunks: AsyncIterable<Buffer>) {
      for await (const chunk of chunks) {
        size += chunk.length;
        if (size > maxBytes) throw payloadTooLarge(`file is larger than ${maxBytes} bytes`);
        hash.update(chunk);
        yield chunk;
      }
    },
    size: () => size,
    sha256: () => hash.digest('hex'),
  };
}

export function checkJobId(jobId: string): void {
  if (!JOB_ID.test(jobId)) throw new WorkspacePathRefused(`"${jobId}" is not a valid job id`);
}

/**
 * Per-job folders, as the seed's JobStorageService: jobs/{id}/input and jobs/{id}/output. Every
 * path is resolved inside its job's folder; "..", absolute paths and NUL bytes are refused.
 * Files are written to a temp name and renamed, with their SHA-256 computed on the way.
 */
export class JobWorkspace implements JobFiles {
  readonly root: string;
  readonly location: string;

  constructor(storageDir: string) {
    this.root = path.resolve(storageDir, 'jobs');
    this.location = this.root;
  }

  jobDir(jobId: string): string {
    checkJobId(jobId);
    return path.join(this.root, jobId);
  }

  async create(jobId: string): Promise<void> {
    const dir = this.jobDir(jobId);
    await mkdir(path.join(dir, 'input'), { recursive: true });
    await mkdir(path.join(dir, 'output'), { recursive: true });
  }

  /** The absolute path of `relativePath` inside the job's folder (the folder itself without one). */
  resolve(jobId: string, relativePath?: string): string {
    const dir = this.jobDir(jobId);
    if (relativePath === undefined || relativePath === '') return dir;
    // .part names are this workspace's temp files (hidden from listings): not a client's to use.
    return path.join(dir, ...jobRelativePath(relativePath).split('/'));
  }

  /** Like resolve, and the result must also lie inside the job's `folder` (input or output). */
  resolveUnder(jobId: string, folder: 'input' | 'output', relativePath: string): string {
    checkJobId(jobId);
    return path.join(this.jobDir(jobId), ...jobPathUnder(folder, relativePath).split('/'));
  }

  /** The job's own folder: a worker beside the server runs in it, nothing copied. */
  async checkout(jobId: string): Promise<string> {
    return this.jobDir(jobId);
  }

  /** Outputs are already in place. */
  async checkin(): Promise<void> {}

  /** The job's own folder stays (its files are the job's). */
  async discard(): Promise<void> {}

  /** A path to write to, its parent folders created (for tools that want a file name). */
  async allocate(jobId: string, relativePath: string): Promise<string> {
    const target = this.resolve(jobId, relativePath);
    await mkdir(path.dirname(target), { recursive: true }).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'EEXIST' || err.code === 'ENOTDIR')
        throw conflict(`"${relativePath}": a file is where a folder would go`);
      throw err;
    });
    return target;
  }

  /**
   * Saves bytes, a file (by path) or a stream, at most `maxBytes` of it (more is a 413, and
   * nothing is kept). Written to a temp name and renamed, so a failure leaves nothing behind.
   */
  async save(
    jobId: string,
    relativePath: string,
    source: Buffer | string | Readable,
    maxBytes = Number.POSITIVE_INFINITY,
  ): Promise<SavedJobFile> {
    const target = await this.allocate(jobId, relativePath);
    const temp = `${target}.${randomUUID()}.part`;
    const body = measured(source, maxBytes);
    try {
      await pipeline(body.stream, body.measure, createWriteStream(temp, { flush: true }));
      await rename(temp, target).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'EISDIR' || err.code === 'ENOTEMPTY' || err.code === 'EEXIST')
          throw conflict(`"${relativePath}" is a folder`);
        throw err;
      });
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
    const sha256 = body.sha256();
    return {
      relative_path: path.relative(this.jobDir(jobId), target).split(path.sep).join('/'),
      size: body.size(),
      sha256,
      hash: sha256,
    };
  }

  async open(jobId: string, relativePath: string): Promise<{ stream: ReadStream; size: number }> {
    const target = this.resolve(jobId, relativePath);
    const info = await stat(target).catch(() => undefined);
    if (!info?.isFile()) throw notFound(`job ${jobId} has no file ${relativePath}`);
    return { stream: createReadStream(target), size: info.size };
  }

  /** Every file of a job, relative to its folder. */
  async list(jobId: string): Promise<{ path: string; size: number }[]> {
    const dir = this.jobDir(jobId);
    const out: { path: string; size: number }[] = [];
    const walk = async (d: string) => {
      for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) await walk(p);
        else if (!e.name.endsWith('.part'))
          out.push({ path: path.relative(dir, p).split(path.sep).join('/'), size: (await stat(p)).size });
      }
    };
    await walk(dir);
    return out.sort((a, b) => a.path.localeCompare(b.path));
  }

  async remove(jobId: string): Promise<void> {
    await rm(this.jobDir(jobId), { recursive: true, force: true });
  }
}
