import { defineEvents } from '@qlab/events';
import { z } from 'zod';
import { BACKEND_STATUSES, JOB_STATUSES } from './providers/types';

const jobStatus = z.enum(JOB_STATUSES);
const backendStatus = z.enum(BACKEND_STATUSES);

/** Every event quantum-tracker publishes, on `qlab/quantum-tracker/<type>`. */
export const trackerEvents = defineEvents('quantum-tracker', {
  'tracker.job.status_changed': {
    summary:
      "A provider job's status changed between two syncs, or a job appeared after the first sync (`from` is then null; the first sync's jobs are not announced).",
    subject: '{provider}/{job_id}',
    data: z
      .object({
        provider: z.string().describe('The account, as configured (ibm, ibm:alice, ionq)'),
        job_id: z.string(),
        backend: z.string().nullable(),
        from: jobStatus.nullable(),
        to: jobStatus,
      })
      .strict(),
  },
  'tracker.backend.status_changed': {
    summary:
      "A backend's status changed (online, paused, offline; offline too when the provider stops listing it).",
    subject: '{provider}/{backend}',
    data: z
      .object({
        provider: z.string(),
        backend: z.string(),
        from: backendStatus.nullable(),
        to: backendStatus,
        reason: z.string().nullable().describe("The provider's status message, when it gives one"),
      })
      .strict(),
  },
  'tracker.sync.failed': {
    summary: 'A sync with a provider failed; the tracker goes on serving what it recorded and retries.',
    subject: '{provider}',
    data: z
      .object({
        provider: z.string(),
        kind: z.enum(['all', 'jobs', 'backends']),
        error: z.string(),
        status: z.number().int().nullable().describe("The provider's HTTP status, when it answered"),
        consecutive_failures: z.number().int().min(1),
        retry_after_ms: z.number().int().min(0).nullable().describe('From Retry-After, when given'),
      })
      .strict(),
  },
});
export type TrackerEvents = typeof trackerEvents.events;
