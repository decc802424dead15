import { pgTestUrl } from '@qlab/testkit';
import { uploadStorageContract } from './storage.contract';

uploadStorageContract('SQLite');

const pgUrl = pgTestUrl('chunked-upload');
(pgUrl ? describe : describe.skip)('PostgreSQL', () => {
  uploadStorageContract('PostgreSQL', pgUrl);
});
