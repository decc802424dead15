import { badRequest, conflict, payloadTooLarge, unsupportedMediaType } from '@qlab/kit';
import type { Request, Response } from 'express';
import type { Upload } from '../../domain/upload';
import { appendBody } from './append';
import { OCTETS, type TusContext } from './context';
import { intHeader, parseConcat, parseMetadata } from './headers';

/** The partial uploads a final one names: all the caller's, all finished. */
async function finishedPartials(ctx: TusContext, ids: string[], keyId: unknown): Promise<Upload[]> {
  return Promise.all(
    ids.map(async (partId) => {
      const p = await ctx.service.store.get(partId);
      if (!p || p.protocol !== 'tus' || p.keyId !== keyId || p.concat !== 'partial')
        throw badRequest(`${partId} is not a partial upload of yours`);
      // We do not announce concatenation-unfinished: "This concatenation request SHOULD happen
      // after all of the corresponding partial uploads are completed."
      if (p.status !== 'active' || p.length === null || p.offset !== p.length)
        throw badRequest(`partial upload ${partId} is not finished`);
      return p;
    }),
  );
}

/**
 * Concatenation: "The partial uploads MUST be concatenated as per the order specified in the
 * list." The partials are held while they are copied (in id order, so two finals never wait on each
 * other), and checked again once held: a DELETE or another final that got there first leaves
 * nothing to copy. "The Server MAY delete partial uploads after concatenation": we do.
 */
async function concatenate(ctx: TusContext, upload: Upload, parts: Upload[]): Promise<Upload> {
  const { service } = ctx;
  const releases: (() => void)[] = [];
  try {
    for (const pid of [...new Set(parts.map((p) => p.id))].sort())
      releases.push(await service.locks.acquire(pid, () => undefined, { takeOver: false }));
    const held = await Promise.all(parts.map((p) => service.store.get(p.id)));
    let offset = 0;
    for (const p of held)
      if (!p || p.status !== 'active' || p.offset !== p.length)
        throw conflict(`partial upload ${p?.id ?? ''} is gone or was used by another final upload`);
    for (const p of held) offset += await service.files.copyInto(p!.dataPath, upload.dataPath, offset);
    await service.store.update(upload.id, { offset });
    const finished = await service.complete({ ...upload, offset });
    for (const p of held) await service.end(p!, 'terminated');
    return finished;
  } catch (err) {
    await service.abandon(upload);
    throw err;
  } finally {
    for (const r of releases) r();
  }
}

/**
 * Creation: "The Client MUST send a POST request against a known upload creation URL to request
 * a new upload resource. The request MUST include one of the following headers: a) Upload-Length
 * … b) Upload-Defer-Length: 1" (we do not announce creation-defer-length, so (a) is required).
 * "If the length of the upload exceeds the maximum, which MAY be specified using the Tus-Max-Size
 * header, the Server MUST respond with the 413 Request Entity Too Large status." "The Server MUST
 * acknowledge a successful upload creation with the 201 Created status. The Server MUST set the
 * Location header to the URL of the created resource."
 */
export function postHandler(ctx: TusContext) {
  const { service } = ctx;
  const { policy, files } = service;
  return async (req: Request, res: Response): Promise<void> => {
    const concat = parseConcat(req.get('upload-concat'));
    const metadata = parseMetadata(req.get('upload-metadata'));
    if (req.get('upload-defer-length') !== undefined)
      throw badRequest('Upload-Defer-Length is not supported; send Upload-Length');
    let length = intHeader(req.get('upload-length'), 'Upload-Length');
    const id = service.newId();
    const clientFilename = metadata.filename ?? metadata.name ?? `upload-${id}`;

    let parts: Upload[] = [];
    if (concat?.kind === 'final') {
      parts = await finishedPartials(ctx, concat.ids, res.locals.keyId);
      // "The length of the final upload MUST be the sum of the length of all partial uploads."
      length = parts.reduce((sum, p) => sum + (p.length ?? 0), 0);
    } else if (length === undefined) {
      throw badRequest('Upload-Length is required');
    }
    if (length > policy.maxBytes)
      throw payloadTooLarge(`Upload-Length ${length} is above Tus-Max-Size ${policy.maxBytes}`);
    // Everything that can refuse the request is checked before anything is created.
    const hasBody = Number(req.get('content-length') ?? 0) > 0 || req.get('transfer-encoding') !== undefined;
    if (hasBody && concat?.kind === 'final') throw badRequest('a final concatenation takes no body');
    // Creation With Upload: "The Client MUST include the Content-Type: application/offset+octet-stream header."
    if (hasBody && !req.is(OCTETS))
      throw unsupportedMediaType(`a creation request with a body needs Content-Type: ${OCTETS}`);

    const upload = await service.begin({
      id,
      protocol: 'tus',
      keyId: String(res.locals.keyId),
      clientFilename,
      targetPath: concat?.kind === 'partial' ? null : await service.chooseTarget(clientFilename),
      dataPath: files.stagingPath(id),
      length,
      metadata,
      concat: concat?.kind ?? null,
      concatParts: concat?.kind === 'final' ? concat.ids : [],
    });
    res.setHeader('Location', ctx.locationOf(req, id));

    if (concat?.kind === 'final') {
      const done = await concatenate(ctx, upload, parts);
      // "After successful concatenation, the Upload-Offset and Upload-Length MUST be set and
      // their values MUST be equal."
      res.setHeader('Upload-Offset', String(done.offset));
      res.status(201).end();
      return;
    }

    if (hasBody) {
      // "The Server SHOULD accept as many bytes as possible and MUST include the Upload-Offset
      // header in the response". A body that is refused (too long, bad checksum) takes its
      // upload with it; one that merely stops early leaves a resumable upload.
      const after = await ctx
        .exclusive(req, id, () => appendBody(ctx, req, upload, 0))
        .catch(async (err) => {
          await service.abandon(upload);
          throw err;
        });
      res.setHeader('Upload-Offset', String(after.offset));
      if (after.status === 'active') res.setHeader('Upload-Expires', ctx.expires(after));
    } else {
      // Expiration: "If the expiration is known at the creation, the Upload-Expires header MUST
      // be included in the response to the initial POST request."
      res.setHeader('Upload-Expires', ctx.expires(upload));
    }
    res.status(201).end();
  };
}
