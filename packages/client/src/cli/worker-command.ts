import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { QlabClientError } from '../errors';

export interface WorkerCommandOptions {
  jobsUrl?: string;
  token?: string;
  tasks?: string;
  concurrency?: number;
  id?: string;
}

/**
 * `qlab worker`: runs the job-worker's remote worker (it claims jobs from JOBS_URL over HTTP) in
 * the foreground; Ctrl-C or SIGTERM drains it. The worker ships with the job-worker service in
 * the same checkout or image, next to this client.
 */
export function runWorker(o: WorkerCommandOptions): Promise<number> {
  const entry = path.resolve(__dirname, '../../../services/job-worker/dist/worker-main.js');
  const fromSource = path.resolve(__dirname, '../../../../services/job-worker/dist/worker-main.js');
  const found = [entry, fromSource].find((p) => existsSync(p));
  if (!found)
    throw new QlabClientError(
      'the job-worker is not built here; run `pnpm build` in the qlab checkout first',
    );
  const env: NodeJS.ProcessEnv = { ...process.env };
  if (o.jobsUrl) env.JOBS_URL = o.jobsUrl;
  if (o.token) env.JOBS_API_TOKEN = o.token;
  if (o.tasks) env.WORKER_SUPPORTED_TASKS = o.tasks;
  if (o.concurrency) env.WORKER_CONCURRENCY = String(o.concurrency);
  if (o.id) env.WORKER_ID = o.id;
  env.JOBS_URL ??= 'http://127.0.0.1:8100';
  const child = spawn(process.execPath, ['--enable-source-maps', found], { env, stdio: 'inherit' });
  const forward = (signal: NodeJS.Signals) => child.kill(signal);
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  return new Promise((resolve) =>
    child.on('exit', (code) => {
      process.off('SIGINT', forward);
      process.off('SIGTERM', forward);
      resolve(code ?? 1);
    }),
  );
}
