/** The two archive kinds the seed stores: calibrations (by hashID) and results (by hashID and name). */
export type ArchiveKind = 'calibration' | 'result';

export interface ArchiveRecord {
  id: number;
  kind: ArchiveKind;
  hashID: string;
  /** Results only. */
  name: string | null;
  /** Results only: the run that produced it (QIBO DB's runID), when given. */
  runId: string | null;
  notes: string;
  /** The uploaded file's name, cleaned; metadata only, never a path on disk. */
  filename: string;
  size: number;
  sha256: string;
  /** Epoch milliseconds. */
  createdAt: number;
}

export type NewArchive = Omit<ArchiveRecord, 'id' | 'createdAt'>;

export interface ArchiveQuery {
  hashID?: string;
  name?: string;
  runId?: string;
  /** Epoch ms, inclusive. */
  since?: number;
  /** Epoch ms, exclusive. */
  until?: number;
  limit: number;
  offset: number;
}

/** The seed's timestamp format, "2025-09-11 12:34:56" (UTC). */
export function formatTimestamp(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').slice(0, 19);
}

/** Reduces a client-supplied file name to a harmless display name. */
export function cleanFilename(raw: string | undefined): string {
  const base = (raw ?? '').split(/[\\/]/).pop() ?? '';
  const cleaned = base
    .replace(/[\u0000-\u001f\u007f]/g, '')
    .trim()
    .slice(0, 255);
  return cleaned === '' || cleaned === '.' || cleaned === '..' ? 'archive.zip' : cleaned;
}
