import { pgTestUrl } from '@qlab/testkit';
import { repositoryContract } from './repository.contract';

repositoryContract('SQLite');

const pgUrl = pgTestUrl('job-worker');
(pgUrl ? describe : describe.skip)('PostgreSQL', () => {
  repositoryContract('PostgreSQL', pgUrl);
});
