import { publicUrl } from '@qlab/kit';
import type { Request } from 'express';
import { type ArchiveRecord, formatTimestamp } from '../domain/archives';

/**
 * The seed's list item ({id, hashID, notes, created_at, filename, size}; results also name and
 * run_id) plus sha256 and a download link. Empty notes are null, as upstream stores them.
 */
export function presentItem(req: Request, r: ArchiveRecord) {
  return {
    id: r.id,
    hashID: r.hashID,
    ...(r.kind === 'result' ? { name: r.name, run_id: r.runId } : {}),
    notes: r.notes === '' ? null : r.notes,
    created_at: formatTimestamp(r.createdAt),
    filename: r.filename,
    size: r.size,
    sha256: r.sha256,
    download_url: publicUrl(req, `/${r.kind}s/${r.id}/archive`),
  };
}
