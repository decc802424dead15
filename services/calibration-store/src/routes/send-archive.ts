import { pipeline } from 'node:stream/promises';
import { AppError, type Logger, rangeNotSatisfiable } from '@qlab/kit';
import type { NextFunction, Response } from 'express';
import { type ArchiveRecord, formatTimestamp } from '../domain/archives';
import type { BlobStore } from '../storage/blob-store';

/**
 * Streams an archive from disk with Range support; the ETag is the content's SHA-256, so a
 * client can verify what it got and revalidate for free.
 */
export function sendArchive(
  res: Response,
  next: NextFunction,
  record: ArchiveRecord,
  blobs: BlobStore,
  logger: Logger,
) {
  res.setHeader('ETag', `"${record.sha256}"`);
  res.attachment(record.filename);
  res.setHeader('Content-Type', 'application/zip');
  res.setHeader('X-Archive-Id', String(record.id));
  res.setHeader('X-Archive-SHA256', record.sha256);
  res.sendFile(
    blobs.pathOf(record.sha256),
    { etag: false, lastModified: true, cacheControl: false, acceptRanges: true, dotfiles: 'allow' },
    (err?: Error & { code?: string; status?: number }) => {
      if (!err) return;
      if (err.code === 'ECONNABORTED' || res.headersSent) return;
      if (err.status === 416) return next(rangeNotSatisfiable('range not satisfiable'));
      logger.error({ err, id: record.id, sha256: record.sha256 }, 'archive content missing on disk');
      next(new AppError(500, 'ARCHIVE_MISSING', 'the archive content is missing on the server'));
    },
  );
}

/**
 * The seed's JSON download, {"notes", "filename", "data_b64"}, streamed: base64 is produced
 * chunk by chunk (3-byte aligned) so the archive is never whole in memory.
 */
export async function sendBase64Json(res: Response, record: ArchiveRecord, blobs: BlobStore): Promise<void> {
  // As QIBO DB answers: notes (null when empty), filename, created_at, run_id for results.
  const head = JSON.stringify({
    notes: record.notes === '' ? null : record.notes,
    filename: record.filename,
    created_at: formatTimestamp(record.createdAt),
    ...(record.kind === 'result' ? { run_id: record.runId } : {}),
  });
  const prefix = `${head.slice(0, -1)},"data_b64":"`;
  const suffix = '"}';
  const encodedLength = Math.ceil(record.size / 3) * 4;
  res.status(200);
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(prefix) + encodedLength + suffix.length);
  res.setHeader('ETag', `"${record.sha256}"`);
  await pipeline(
    blobs.openRead(record.sha256),
    async function* base64(chunks: AsyncIterable<Buffer>) {
      yield prefix;
      let carry = Buffer.alloc(0);
      for await (const chunk of chunks) {
        const buf = carry.length > 0 ? Buffer.concat([carry, chunk]) : chunk;
        const whole = buf.length - (buf.length % 3);
        if (whole > 0) yield buf.subarray(0, whole).toString('base64');
        carry = Buffer.from(buf.subarray(whole));
      }
      if (carry.length > 0) yield carry.toString('base64');
      yield suffix;
    },
    res,
  );
}
