import type { Request, Response } from 'express';
import type { Upload } from '../../domain/upload';
import type { TusContext } from './context';
import { formatMetadata } from './headers';

/**
 * An upload whose every byte is stored but that is not complete: the process died between
 * storing the last offset and publishing the file. A client's HEAD then reads offset ==
 * length and takes the upload as done (tus-js-client calls onSuccess without another PATCH),
 * so the completion that was cut short is done here, under the upload's lock, first.
 */
async function finishIfWhole(ctx: TusContext, req: Request, res: Response, upload: Upload): Promise<Upload> {
  if (upload.status !== 'active' || upload.length === null || upload.offset !== upload.length) return upload;
  if (upload.concat === 'partial') return upload;
  const release = await ctx.service.locks.acquire(upload.id, () => undefined, { takeOver: false });
  try {
    const now = await ctx.load(req, res);
    if (now.status !== 'active' || now.length === null || now.offset !== now.length) return now;
    return await ctx.service.complete(now);
  } finally {
    release();
  }
}

/**
 * HEAD: "The Server MUST always include the Upload-Offset header in the response for a HEAD
 * request, even if the offset is 0, or the upload is already considered completed. If the
 * size of the upload is known, the Server MUST include the Upload-Length header in the
 * response." "The Server MUST prevent the client and/or proxies from caching the response by
 * adding the Cache-Control: no-store header to the response."
 */
export function headHandler(ctx: TusContext) {
  return async (req: Request, res: Response): Promise<void> => {
    const upload = await finishIfWhole(ctx, req, res, await ctx.load(req, res));
    res.setHeader('Cache-Control', 'no-store');
    if (upload.length !== null) res.setHeader('Upload-Length', String(upload.length));
    res.setHeader('Upload-Offset', String(upload.offset));
    // Creation: "If an upload contains additional metadata, responses to HEAD requests MUST
    // include the Upload-Metadata header and its value as specified by the Client during the creation."
    if (Object.keys(upload.metadata).length > 0)
      res.setHeader('Upload-Metadata', formatMetadata(upload.metadata));
    // Concatenation: "Response to HEAD request against partial or final upload MUST include the
    // Upload-Concat header and its value as received in the upload creation request."
    if (upload.concat === 'partial') res.setHeader('Upload-Concat', 'partial');
    if (upload.concat === 'final')
      res.setHeader('Upload-Concat', `final;${upload.concatParts.map((p) => `/files/${p}`).join(' ')}`);
    if (upload.status === 'active') res.setHeader('Upload-Expires', ctx.expires(upload));
    // "The Server SHOULD acknowledge successful HEAD requests with a 200 OK or 204 No Content status."
    res.status(200).end();
  };
}
