import { unsupportedMediaType } from '@qlab/kit';
import { openZip } from '../domain/zip-reader';

/**
 * Refuses anything that is not a readable zip: reads the central directory and every entry
 * header (not the contents). yauzl also refuses entry names that are absolute or climb out
 * with "..", so a stored archive is always safe to unpack.
 */
export function assertZipArchive(file: string): Promise<{ entries: number }> {
  return new Promise((resolve, reject) => {
    const refuse = (err: Error) =>
      reject(unsupportedMediaType(`the upload is not a valid zip archive: ${err.message}`));
    openZip(file, { lazyEntries: true, autoClose: true }).then((zip) => {
      let entries = 0;
      zip.on('entry', () => {
        entries++;
        zip.readEntry();
      });
      zip.on('end', () => resolve({ entries }));
      zip.on('error', refuse);
      zip.readEntry();
    }, refuse);
  });
}
