import yauzl from 'yauzl';

/** Longest name listed whole; a longer one is cut and ends with "…". */
const NAME_MAX = 1024;
/** Characters of names in one page, at most (a page may so hold fewer than `limit` entries). */
const PAGE_NAME_CHARS = 1024 * 1024;

export interface ZipEntry {
  name: string;
  size: number;
  compressed_size: number;
  crc32: string;
  /** The entry's own time (DOS time, read as UTC; an extended timestamp when present); null if garbled. */
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
  file: string,
  offset: number,
  limit: number,
): Promise<{ entries: ZipEntry[]; total: number }> {
  return new Promise((resolve, reject) => {
    yauzl.open(file, { lazyEntries: true, autoClose: false }, (err, zip) => {
      if (err || !zip) return reject(err ?? new Error('unreadable zip'));
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
      zip.on('entry', (e: yauzl.Entry) => {
        if (index >= offset) {
          bytes += Math.min(e.fileName.length, NAME_MAX);
          entries.push({
            name: e.fileName.length > NAME_MAX ? `${e.fileName.slice(0, NAME_MAX)}…` : e.fileName,
            size: e.uncompressedSize,
            compressed_size: e.compressedSize,
            crc32: (e.crc32 >>> 0).toString(16).padStart(8, '0'),
            modified: isoOrNull(e.getLastModDate({ forceDosFormat: false, timezone: 'UTC' })),
            directory: e.fileName.endsWith('/'),
            encrypted: (e.generalPurposeBitFlag & 0x1) !== 0,
          });
        }
        index++;
        // A page also ends at PAGE_NAME_CHARS of names: zip names may be 64 KiB each.
        if (entries.length >= limit || bytes >= PAGE_NAME_CHARS) finish();
        else zip.readEntry();
      });
      zip.on('end', () => finish());
      zip.on('error', finish);
      zip.readEntry();
    });
  });
}

function isoOrNull(d: Date): string | null {
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}
