import { type LocalS3, startLocalS3 } from '@qlab/blob-store/testing';
import { pgTestUrl } from '@qlab/testkit';
import { archiveApiContract } from './api.contract';

archiveApiContract({ name: 'sqlite' });

const pgUrl = pgTestUrl('calibration-store');
(pgUrl ? describe : describe.skip)('PostgreSQL', () => {
  archiveApiContract({ name: 'postgres', url: pgUrl! });
});

(pgUrl ? describe : describe.skip)('PostgreSQL with the archives in S3', () => {
  let s3: LocalS3;
  let n = 0;
  beforeAll(async () => {
    s3 = await startLocalS3();
  });
  afterAll(() => s3.close());
  archiveApiContract({
    name: 'postgres',
    url: pgUrl!,
    label: 'PostgreSQL + S3 (s3rver)',
    blobStore: () => s3.store(`calibration-store-${n++}`),
  });
});
