import { publicUrl } from '@qlab/kit';
import type { Request } from 'express';
import { type ArchiveRecord, formatTimestamp } from '../domain/archives';

/** The seed's list item ({id, hashID, notes, created_at, filename, size}) plus name, sha256 and a download link. */
export function presentItem(req: Request, r: ArchiveRecord) {
  return {
    id: r.id,
    hashID: r.hashID,
    ...(r.kind === 'result' ? { name: r.name } : {}),
    notes: r.notes,
    created_at: formatTimestamp(r.createdAt),
    filename: r.filename,
    size: r.size,
    sha256: r.sha256,
    download_url: publicUrl(req, `/${r.kind}s/${r.id}/archive`),
  };
}
