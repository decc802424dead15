import type yauzl from 'yauzl';
import { openZip, type ZipSource } from './zip-reader';

/** Longest name listed whole; a longer one is cut and ends with "…". */
const NAME_MAX = 1024;
/** Characters of names in one page, at most (a page may so hold fewer than `limit` entries). */
const PAGE_NAME_CHARS = 1024 * 1024;

export interface ZipEntry {
  name: string;
  size: number;
  compressed_size: number;
  crc32: string;
  /**
   * The entry's own time: its extended timestamp (0x5455) when present, else its DOS date and
   * time read as UTC; null when the DOS fields are out of range (month 13, 25 o'clock, 31 Feb).
   */
  modified: string | null;
  directory: boolean;
  encrypted: boolean;
}

/**
 * The entries of a stored zip from its central directory, without reading any file's contents:
 * `offset` and `limit` page through them in archive order; `total` is the directory's own count.
 * yauzl decodes names (UTF-8 when the entry's flag says so, CP437 otherwise, as APPNOTE 4.4.4
 * says) and refuses absolute and climbing names, which the upload check already did.
 */
export function listZipEntries(
  source: string | ZipSource,
  offset: number,
  limit: number,
  signal?: AbortSignal,
): Promise<{ entries: ZipEntry[]; total: number }> {
  return new Promise((resolve, reject) => {
    openZip(source, { lazyEntries: true, autoClose: false }).then((zip) => {
      const entries: ZipEntry[] = [];
      let index = 0;
      let bytes = 0;
      let done = false;
      const finish = (error?: Error) => {
        if (done) return;
        done = true;
        zip.close();
        if (error) reject(error);
        else resolve({ entries, total: zip.entryCount });
      };
      // Past the end there is nothing to read. A caller who went away (`signal`) stops the
      // reading at the next entry.
      if (offset >= zip.entryCount) return finish();
      zip.on('entry', (e: yauzl.Entry) => {
        if (index >= offset) {
          bytes += Math.min(e.fileName.length, NAME_MAX);
          entries.push({
            name: e.fileName.length > NAME_MAX ? `${e.fileName.slice(0, NAME_MAX)}…` : e.fileName,
            size: e.uncompressedSize,
            compressed_size: e.compressedSize,
            crc32: (e.crc32 >>> 0).toString(16).padStart(8, '0'),
            modified: modifiedOf(e),
            directory: e.fileName.endsWith('/'),
            encrypted: (e.generalPurposeBitFlag & 0x1) !== 0,
          });
        }
        index++;
        // A page also ends at PAGE_NAME_CHARS of names: zip names may be 64 KiB each.
        if (entries.length >= limit || bytes >= PAGE_NAME_CHARS || signal?.aborted) finish();
        else zip.readEntry();
      });
      zip.on('end', () => finish());
      zip.on('error', finish);
      zip.readEntry();
    }, reject);
  });
}

/**
 * APPNOTE 4.4.6: "The date and time are encoded in standard MS-DOS format": date bits 0-4 day
 * (1-31), 5-8 month (1-12), 9-15 years since 1980; time bits 0-4 seconds / 2, 5-10 minutes,
 * 11-15 hours. Out-of-range fields would otherwise roll over into another date.
 */
function validDos(date: number, time: number): boolean {
  const day = date & 0x1f;
  const month = (date >> 5) & 0xf;
  const year = 1980 + (date >> 9);
  const seconds = (time & 0x1f) * 2;
  const minutes = (time >> 5) & 0x3f;
  const hours = time >> 11;
  if (month < 1 || month > 12 || day < 1 || hours > 23 || minutes > 59 || seconds > 59) return false;
  return new Date(Date.UTC(year, month - 1, day)).getUTCDate() === day;
}

function modifiedOf(e: yauzl.Entry): string | null {
  const stated = e.getLastModDate({ forceDosFormat: false, timezone: 'UTC' });
  const dos = e.getLastModDate({ forceDosFormat: true, timezone: 'UTC' });
  const extended = stated.getTime() !== dos.getTime();
  if (!extended && !validDos(e.lastModFileDate, e.lastModFileTime)) return null;
  return Number.isNaN(stated.getTime()) ? null : stated.toISOString();
}
