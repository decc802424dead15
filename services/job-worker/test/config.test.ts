import { ConfigError } from '@qlab/kit';
import { loadRemoteWorkerConfig, loadServerConfig } from '../src/config';

describe('job-worker configuration', () => {
  it('has defaults and reads durations and task lists', () => {
    const c = loadServerConfig({ DATA_DIR: '/tmp/x' });
    expect(c).toMatchObject({
      port: 8100,
      leaseMs: 30_000,
      retentionMs: 0,
      worker: { concurrency: 2, pollIntervalMs: 1000 },
    });
    expect(c.worker.taskTypes).toBeUndefined();
    expect(c.dbUrl).toBe('/tmp/x/job-worker/jobs.db');
    const d = loadServerConfig({
      JOBS_RETENTION: '7d',
      WORKER_SUPPORTED_TASKS: 'archive.zip, checksum.sha256',
      WORKER_CONCURRENCY: '0',
    });
    expect(d).toMatchObject({
      retentionMs: 7 * 86_400_000,
      worker: { taskTypes: ['archive.zip', 'checksum.sha256'], concurrency: 0 },
    });
  });

  it('names every bad variable', () => {
    try {
      loadServerConfig({ JOBS_RETENTION: 'a week', JOBS_LEASE_MS: '5', PORT: 'x' });
      throw new Error('expected a ConfigError');
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      for (const key of ['JOBS_RETENTION', 'JOBS_LEASE_MS', 'PORT'])
        expect((err as Error).message).toContain(key);
    }
    expect(() => loadRemoteWorkerConfig({})).toThrow(/JOBS_URL/);
    expect(loadRemoteWorkerConfig({ JOBS_URL: 'http://h:8100' })).toMatchObject({
      jobsUrl: 'http://h:8100',
      worker: { concurrency: 1 },
    });
  });
});
