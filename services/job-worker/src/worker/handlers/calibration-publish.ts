import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { resultsUpload } from '@qlab/client';
import { z } from 'zod';
import type { Handler } from '../types';
import type { TaskSpec } from './task-spec';

export const calibrationPublishTask: TaskSpec = {
  description:
    "Zips the job's outputs (or its inputs) and uploads them to the calibration store as a result.",
  inputs: 'optional',
  params: z.object({
    hashID: z.string().min(1).max(256).describe('The calibration the result belongs to'),
    name: z.string().min(1).max(200).describe("The result's run name"),
    notes: z.string().max(10_000).optional().describe('Notes stored with the result'),
  }),
};

export interface PublishTarget {
  /** The calibration store's URL, e.g. http://127.0.0.1:5050. */
  url?: string;
  token?: string;
}

/**
 * calibration.publish: zips the job's outputs (or, with none yet, its inputs) and uploads them to
 * the calibration store as a result, params {hashID, name, notes}. Uses the client package.
 */
export function calibrationPublish(target: PublishTarget): Handler {
  return async ({ dir, job, progress, log }) => {
    const hashID = job.params.hashID;
    const name = job.params.name;
    if (typeof hashID !== 'string' || hashID === '' || typeof name !== 'string' || name === '') {
      throw new Error('calibration.publish needs params.hashID and params.name');
    }
    if (!target.url) throw new Error('CALIBRATION_STORE_URL is not set for this worker');
    let folder = path.join(dir, 'output');
    if ((await readdir(folder).catch(() => [])).length === 0) folder = path.join(dir, 'input');
    const entries = (await readdir(folder)).map((e) => path.join(folder, e));
    if (entries.length === 0) throw new Error('nothing to publish: the job has no output or input files');
    const notes = typeof job.params.notes === 'string' ? job.params.notes : `published by job ${job.job_id}`;
    log(`publishing ${entries.length} file(s) from ${path.basename(folder)}/ as ${name} of ${hashID}`);
    const r = await resultsUpload(hashID, name, notes, entries, {
      serverUrl: target.url,
      apiToken: target.token,
      // Never read a user's ~/.qibo_client.json from a worker.
      configFile: path.join(dir, '.no-client-config.json'),
      archiveName: `${name}.zip`,
      // A job runs at least once (a lease can run out under a live worker): one result per job.
      // Its creation time is in the key too: a job id deleted and used again is another job.
      idempotencyKey: `job-${job.job_id}-${job.created_at}-publish`,
      onProgress: (done, total) => progress(total > 0 ? Math.floor((done / total) * 99) : 50),
    });
    log(`stored as result ${r.id}`);
    return {
      result_id: r.id,
      sha256: r.sha256 ?? null,
      created_at: r.created_at,
      download_url: r.download_url ?? null,
    };
  };
}
