import { serviceAsyncApi } from '@qlab/events';
import { bearerAuth, createServiceApp, type Logger } from '@qlab/kit';
import type { Express } from 'express';
import { jobEvents } from './events';
import { openapi } from './openapi';
import { jobRoutes } from './routes/jobs';
import { logRoutes } from './routes/logs';
import type { JobLogs } from './storage/job-logs';
import type { JobRepository } from './storage/job-repository';
import type { JobFiles } from './storage/workspace';

export interface AppDeps {
  logger: Logger;
  repo: JobRepository;
  logs: JobLogs;
  workspace: JobFiles;
  apiToken?: string;
  leaseMs: number;
  maxFileBytes: number;
  readiness?: () => Promise<void>;
}

export function createApp(deps: AppDeps): Express {
  const base = createServiceApp({
    service: 'job-worker',
    logger: deps.logger,
    openapi,
    asyncapi: serviceAsyncApi(jobEvents),
    readiness: deps.readiness,
    // Routes parse their own bodies: a file PUT with a JSON Content-Type is still a file.
    parseBodies: false,
    auth: bearerAuth(deps.apiToken ? [deps.apiToken] : []),
  });
  base.app.use(jobRoutes(deps));
  base.app.use(logRoutes(deps.logs));
  return base.finish();
}
