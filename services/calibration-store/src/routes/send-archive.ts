import { pipeline } from 'node:stream/promises';
import type { ByteRange } from '@qlab/blob-store';
import { AppError, type Logger, rangeNotSatisfiable } from '@qlab/kit';
import type { Request, Response } from 'express';
import parseRange from 'range-parser';
import { type ArchiveRecord, formatTimestamp } from '../domain/archives';
import type { ArchiveBlobs } from '../storage/archive-blobs';

/**
 * Streams an archive from the blob store with conditional GET and Range (RFC 9110); the ETag is
 * the content's SHA-256, so a client can verify what it got and revalidate for free.
 */
export async function sendArchive(
  req: Request,
  res: Response,
  record: ArchiveRecord,
  blobs: ArchiveBlobs,
  logger: Logger,
): Promise<void> {
  const etag = `"${record.sha256}"`;
  const lastModified = new Date(record.createdAt).toUTCString();
  res.setHeader('ETag', etag);
  res.setHeader('Last-Modified', lastModified);
  res.setHeader('Accept-Ranges', 'bytes');
  res.attachment(record.filename);
  res.setHeader('Content-Type', 'application/zip');
  res.setHeader('X-Archive-Id', String(record.id));
  res.setHeader('X-Archive-SHA256', record.sha256);
  // If-None-Match against the ETag (express's req.fresh). If-Modified-Since alone is not
  // honoured: Last-Modified has one-second precision, and a newer archive of the same hashID
  // made within that second would be answered 304 (found by the review).
  if (req.headers['if-none-match'] !== undefined && req.fresh) {
    res.status(304).end();
    return;
  }
  const range = requestedRange(req, record, etag);
  if (range === 'unsatisfiable') {
    // RFC 9110 15.5.17: "a server generating a 416 ... ought to generate a Content-Range header
    // field specifying the current length of the selected representation".
    res.setHeader('Content-Range', `bytes */${record.size}`);
    throw rangeNotSatisfiable(`this archive has ${record.size} bytes`);
  }
  const missing = () => archiveMissing(record, logger);
  if (req.method === 'HEAD') {
    if (!(await blobs.exists(record.sha256))) throw missing();
    setLength(res, record.size, range);
    res.end();
    return;
  }
  const body = await blobs.open(record.sha256, range);
  if (!body) throw missing();
  setLength(res, record.size, range);
  await pipeline(body, res).catch((err: NodeJS.ErrnoException) => {
    // The caller went away (nothing to answer), or the store failed mid-way: the headers are
    // gone, so the connection is cut and the client sees a short body, never a wrong one.
    if (err.code !== 'ERR_STREAM_PREMATURE_CLOSE')
      logger.warn({ err, id: record.id, sha256: record.sha256 }, 'archive stream failed');
  });
}

type WholeRange = ByteRange & { end: number };

/** A row whose bytes are not in the blob store: logged, and answered as a problem. */
export function archiveMissing(record: ArchiveRecord, logger: Logger): AppError {
  logger.error({ id: record.id, sha256: record.sha256 }, 'archive content missing in the blob store');
  return new AppError(500, 'ARCHIVE_MISSING', 'the archive content is missing on the server');
}

function setLength(res: Response, size: number, range: WholeRange | undefined): void {
  if (!range) {
    res.setHeader('Content-Length', size);
    return;
  }
  res.status(206);
  res.setHeader('Content-Range', `bytes ${range.start}-${range.end}/${size}`);
  res.setHeader('Content-Length', range.end - range.start + 1);
}

/**
 * The one byte range to send, undefined for the whole archive. RFC 9110 14.2: "A server MAY
 * ignore the Range header field", and GET is "the only method for which range handling is
 * defined"; malformed ranges, other units and several ranges get the whole archive, as express's
 * own file sending does. 13.1.5: with If-Range, "if the validator given in the If-Range header
 * field matches the current validator ... the server SHOULD process the Range header field";
 * otherwise it "MUST ignore" it (entity tags compared strongly; dates never match, see below).
 */
function requestedRange(
  req: Request,
  record: ArchiveRecord,
  etag: string,
): WholeRange | 'unsatisfiable' | undefined {
  const header = req.headers.range;
  if (!header || (req.method !== 'GET' && req.method !== 'HEAD')) return undefined;
  const ifRange = req.get('if-range');
  // Only the strong ETag: "A valid entity-tag can be used ... the comparison is strong", while
  // a date is a validator only if strong, and ours is not (two archives of one hashID can share
  // a second: a resumed download would splice them). A date gets the whole archive.
  if (ifRange !== undefined && ifRange.trim() !== etag) return undefined;
  // 14.1.3: "If the selected representation is shorter than the specified suffix-length, the
  // entire representation is used" (range-parser refuses such a suffix instead).
  const suffix = /^bytes=\s*-(\d+)\s*$/.exec(header);
  const ranges = parseRange(record.size, suffix && Number(suffix[1]) > record.size ? 'bytes=0-' : header, {
    combine: true,
  });
  if (ranges === -1) return 'unsatisfiable';
  if (ranges === -2 || ranges.type !== 'bytes' || ranges.length !== 1) return undefined;
  return { start: ranges[0]!.start, end: ranges[0]!.end };
}

/**
 * The seed's JSON download, {"notes", "filename", "data_b64"}, streamed: base64 is produced
 * chunk by chunk (3-byte aligned) so the archive is never whole in memory.
 */
export async function sendBase64Json(
  res: Response,
  record: ArchiveRecord,
  blobs: ArchiveBlobs,
  logger: Logger,
): Promise<void> {
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
  const body = await blobs.open(record.sha256);
  if (!body) throw archiveMissing(record, logger);
  await pipeline(
    body,
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
