import { encodeKeyPath } from '@qlab/blob-store';

/**
 * A finished file's object key: `files/` and its path in the upload dir, encoded so any UTF-8
 * name is a key and distinct names never share one (`my file.csv` → `files/my_20file.csv`,
 * `.env` → `files/_2Eenv`; blob-store's encodeKeyPath). Throws RangeError for a name whose key
 * cannot be stored (over 1024 bytes, or a part over 255): the caller refuses the name.
 */
export function objectKeyOf(relPath: string): string {
  return encodeKeyPath('files', relPath);
}
