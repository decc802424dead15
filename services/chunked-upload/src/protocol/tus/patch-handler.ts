import { badRequest, unsupportedMediaType } from '@qlab/kit';
import type { Request, Response } from 'express';
import { appendBody } from './append';
import { OCTETS, type TusContext } from './context';
import { intHeader } from './headers';

/** Refusals decided before the body is read: the connection closes rather than drain a body nobody uses. */
/**
 * PATCH: "All PATCH requests MUST use Content-Type: application/offset+octet-stream, otherwise
 * the server SHOULD return a 415 Unsupported Media Type status." "The Server MUST acknowledge
 * successful PATCH requests with the 204 No Content status. It MUST include the Upload-Offset
 * header containing the new offset." Expiration: "This header MUST be included in every PATCH
 * response if the upload is going to expire." The rules on the body are appendBody's.
 */
export function patchHandler(ctx: TusContext) {
  return async (req: Request, res: Response): Promise<void> => {
    if (!req.is(OCTETS)) throw unsupportedMediaType(`PATCH needs Content-Type: ${OCTETS}`);
    const clientOffset = intHeader(req.get('upload-offset'), 'Upload-Offset');
    if (clientOffset === undefined) throw badRequest('Upload-Offset is required');
    // "If the server receives a PATCH request against a non-existent resource it SHOULD return
    // a 404 Not Found status." Loaded again once held: another request may have moved it on.
    const first = await ctx.load(req, res);
    // A refused body is the kit's to drop after the answer (or to close on, when it cannot).
    const after = await ctx.exclusive(req, first.id, async () =>
      appendBody(ctx, req, await ctx.load(req, res), clientOffset),
    );
    res.setHeader('Upload-Offset', String(after.offset));
    if (after.status === 'active') res.setHeader('Upload-Expires', ctx.expires(after));
    res.status(204).end();
  };
}
