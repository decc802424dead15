import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import type { Job } from '../domain/job';
import type { JobSource } from './types';

/** Jobs over the job-worker HTTP API, for workers on other hosts. Inputs are downloaded, outputs uploaded. */
export class HttpJobSource implements JobSource {
  constructor(
    private readonly baseUrl: string,
    private readonly token: string | undefined,
    readonly leaseMs: number,
  ) {}

  private async call(method: string, route: string, body?: unknown): Promise<Response> {
    const res = await fetch(`${this.baseUrl.replace(/\/+$/, '')}${route}`, {
      method,
      headers: {
        'Content-Type': 'application/json',
        ...(this.token ? { Authorization: `Bearer ${this.token}` } : {}),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
    if (!res.ok)
      throw new Error(`${method} ${route}: HTTP ${res.status} ${(await res.text()).slice(0, 300)}`);
    return res;
  }

  async claim(workerId: string, taskTypes: string[], max: number) {
    const res = await this.call('POST', '/jobs/claim', {
      worker_id: workerId,
      task_types: taskTypes,
      lease_ms: this.leaseMs,
      max,
    });
    if (res.status === 204) return [];
    return ((await res.json()) as { jobs: Job[] }).jobs;
  }

  async heartbeat(job: Job, workerId: string, progress: number) {
    const res = await this.call('POST', `/jobs/${job.job_id}/heartbeat`, {
      worker_id: workerId,
      attempt: job.attempt,
      progress,
    });
    const body = (await res.json()) as { cancel_requested: boolean };
    return { cancelRequested: body.cancel_requested };
  }

  async appendLogs(job: Job, workerId: string, lines: string[]) {
    await this.call('POST', `/jobs/${job.job_id}/logs`, { worker_id: workerId, attempt: job.attempt, lines });
  }

  async complete(job: Job, workerId: string, output: Record<string, unknown>) {
    await this.call('POST', `/jobs/${job.job_id}/complete`, {
      worker_id: workerId,
      attempt: job.attempt,
      output,
    });
  }

  async fail(job: Job, workerId: string, message: string) {
    await this.call('POST', `/jobs/${job.job_id}/fail`, {
      worker_id: workerId,
      attempt: job.attempt,
      error: message,
    });
  }

  async cancelled(job: Job, workerId: string) {
    await this.call('POST', `/jobs/${job.job_id}/cancelled`, { worker_id: workerId, attempt: job.attempt });
  }

  async prepare(job: Job): Promise<string> {
    const dir = await mkdtemp(path.join(tmpdir(), `qlab-job-${job.job_id}-`));
    await mkdir(path.join(dir, 'input'), { recursive: true });
    await mkdir(path.join(dir, 'output'), { recursive: true });
    const listing = (await (await this.call('GET', `/jobs/${job.job_id}/files`)).json()) as {
      files: { path: string }[];
    };
    for (const f of listing.files.filter((x) => x.path.startsWith('input/'))) {
      const res = await this.call(
        'GET',
        `/jobs/${job.job_id}/files/${f.path.split('/').map(encodeURIComponent).join('/')}`,
      );
      const target = path.join(dir, f.path);
      if (!target.startsWith(dir + path.sep)) throw new Error(`refusing input path ${f.path}`);
      await mkdir(path.dirname(target), { recursive: true });
      await pipeline(Readable.fromWeb(res.body as WebReadableStream<Uint8Array>), createWriteStream(target));
    }
    return dir;
  }

  async finish(job: Job, dir: string): Promise<void> {
    const out = path.join(dir, 'output');
    const walk = async (d: string): Promise<string[]> => {
      const found: string[] = [];
      for (const e of await readdir(d, { withFileTypes: true })) {
        const p = path.join(d, e.name);
        found.push(...(e.isDirectory() ? await walk(p) : [p]));
      }
      return found;
    };
    try {
      for (const file of await walk(out)) {
        const rel = path.relative(dir, file).split(path.sep).join('/');
        const size = (await stat(file)).size;
        const res = await fetch(
          `${this.baseUrl.replace(/\/+$/, '')}/jobs/${job.job_id}/files/${rel.split('/').map(encodeURIComponent).join('/')}`,
          {
            method: 'PUT',
            headers: {
              'Content-Type': 'application/octet-stream',
              'Content-Length': String(size),
              ...(this.token ? { Authorization: `Bearer ${this.token}` } : {}),
            },
            // Streamed: outputs can be large.
            body: createReadStream(file) as unknown as RequestInit['body'],
            duplex: 'half',
          } as RequestInit,
        );
        if (!res.ok) throw new Error(`uploading ${rel}: HTTP ${res.status}`);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
}
