import { pgTestUrl } from '@qlab/testkit';
import { archiveApiContract } from './api.contract';

archiveApiContract({ name: 'sqlite' });

const pgUrl = pgTestUrl('calibration-store');
(pgUrl ? describe : describe.skip)('PostgreSQL', () => {
  archiveApiContract({ name: 'postgres', url: pgUrl! });
});
