import { createHash } from 'node:crypto';
import { AppError, conflict, forbidden, payloadTooLarge } from '@qlab/kit';
import type { Request } from 'express';
import type { Upload } from '../../domain/upload';
import { writeVerified } from '../../storage/verified-write';
import type { TusContext } from './context';
import { parseChecksum } from './headers';

/**
 * Applies a request body at the upload's offset: a PATCH, or a POST with creation-with-upload
 * ("similar rules as for the PATCH request and response apply"). Returns the upload after it.
 */
export async function appendBody(
  ctx: TusContext,
  req: Request,
  upload: Upload,
  clientOffset: number,
): Promise<Upload> {
  const { service } = ctx;
  // Concatenation: "The Server MUST respond with the 403 Forbidden status to PATCH requests
  // against a final upload URL and MUST NOT modify the final or its partial uploads."
  if (upload.concat === 'final') throw forbidden('a final concatenated upload cannot be patched');
  // "If the offsets do not match, the Server MUST respond with the 409 Conflict status without
  // modifying the upload resource."
  if (clientOffset !== upload.offset)
    throw conflict(`Upload-Offset ${clientOffset} does not match the upload's offset ${upload.offset}`);
  // Checksum: "1) 400 Bad Request if the checksum algorithm is not supported" (parseChecksum).
  const checksum = parseChecksum(req.get('upload-checksum'));
  const length = upload.length ?? service.policy.maxBytes;
  // A finished upload's bytes are published, and the name may hold another file by now: it is
  // never opened for writing again. Only an empty body (a client confirming the end) is answered.
  if (upload.status === 'complete') {
    const { bytes, digest } = await drainDigest(req, checksum?.algorithm);
    if (bytes > 0) throw payloadTooLarge(`the body goes past Upload-Length ${length}`);
    if (checksum && digest !== checksum.digest)
      throw new AppError(
        460,
        'CHECKSUM_MISMATCH',
        `${checksum.algorithm} of the body is ${digest}, Upload-Checksum said ${checksum.digest}`,
      );
    return upload;
  }
  const written = await writeVerified(service.files, {
    dataPath: upload.dataPath,
    offset: upload.offset,
    body: req as AsyncIterable<Buffer>,
    room: length - upload.offset,
    hash: checksum && { algorithm: checksum.algorithm, encoding: 'base64', expected: checksum.digest },
    // "The Server SHOULD always attempt to store as much of the received data as possible":
    // a body that stops early counts, unless a checksum is to be verified "once the entire
    // request has been received".
    mustBeWhole: checksum !== undefined,
    // "In the first two cases the uploaded chunk MUST be discarded, and the upload and its
    // offset MUST NOT be updated."
    undo: () => service.files.truncateTo(upload.dataPath, upload.offset),
    refuse: {
      tooMany: () => payloadTooLarge(`the body goes past Upload-Length ${length}`),
      aborted: () =>
        new AppError(400, 'CLIENT_ABORTED', 'the body stopped early; a checksummed chunk is kept only whole'),
      // "2) 460 Checksum Mismatch if the checksums mismatch"
      mismatch: (actual, expected) =>
        new AppError(
          460,
          'CHECKSUM_MISMATCH',
          `${checksum?.algorithm} of the body is ${actual}, Upload-Checksum said ${expected}`,
        ),
    },
  });
  // "The new offset MUST be the sum of the offset before the PATCH request and the number of
  // bytes received and processed or stored during the current PATCH request." The bytes were
  // fsynced by writeAt before this offset is stored, so an acknowledged offset survives a crash.
  const now = service.clock();
  let next: Upload = {
    ...upload,
    offset: upload.offset + written.bytes,
    updatedAt: now,
    expiresAt: service.expiresFrom(now),
  };
  await service.store.update(upload.id, { offset: next.offset, updatedAt: now, expiresAt: next.expiresAt });
  // Partial uploads wait, unpublished: "The Server SHOULD NOT process these partial uploads
  // until they are concatenated to form a final upload."
  if (next.length !== null && next.offset === next.length && next.concat !== 'partial')
    next = await service.complete(next);
  return next;
}

/** Reads a body that may not be stored, stopping at its first byte; the digest is of what came. */
async function drainDigest(
  body: AsyncIterable<Buffer>,
  algorithm?: string,
): Promise<{ bytes: number; digest?: string }> {
  const hash = algorithm ? createHash(algorithm) : undefined;
  for await (const piece of body) {
    if (piece.length > 0) return { bytes: piece.length };
  }
  return { bytes: 0, digest: hash?.digest('base64') };
}
