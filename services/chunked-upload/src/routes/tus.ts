import { createHash, type Hash } from 'node:crypto';
import {
  AppError,
  badRequest,
  conflict,
  forbidden,
  notFound,
  payloadTooLarge,
  publicUrl,
  serviceRouter,
  unsupportedMediaType,
} from '@qlab/kit';
import type { NextFunction, Request, Response, Router } from 'express';
import type { Upload } from '../domain/upload';
import type { UploadService } from '../domain/upload-service';
import { TooManyBytes } from '../storage/data-files';
import {
  CHECKSUM_ALGORITHMS,
  formatMetadata,
  intHeader,
  parseChecksum,
  parseConcat,
  parseMetadata,
  TUS_EXTENSIONS,
  TUS_VERSION,
} from './tus-headers';

const OCTETS = 'application/offset+octet-stream';

/**
 * tus 1.0 at /files: core (HEAD, PATCH, OPTIONS) and the creation, creation-with-upload,
 * termination, checksum, expiration and concatenation extensions. Offsets are only
 * acknowledged after the bytes are fsynced, so a crash loses nothing that was acknowledged.
 */
export function tusRoutes(service: UploadService): Router {
  const router = serviceRouter();
  const { store, files, policy } = service;

  const expires = (u: Upload) => new Date(u.expiresAt).toUTCString();
  const locationOf = (req: Request, id: string) => publicUrl(req, `/files/${id}`);

  // X-HTTP-Method-Override was applied by the kit before authentication (request-target.ts),
  // so req.method is already the method the gateway judged.
  router.use((req: Request, res: Response, next: NextFunction) => {
    res.setHeader('Tus-Resumable', TUS_VERSION);
    if (req.method === 'OPTIONS') return next();
    const version = req.headers['tus-resumable'];
    if (version !== TUS_VERSION) {
      res.setHeader('Tus-Version', TUS_VERSION);
      return next(
        new AppError(
          412,
          'TUS_VERSION_UNSUPPORTED',
          `Tus-Resumable must be ${TUS_VERSION}, got ${JSON.stringify(version ?? null)}`,
        ),
      );
    }
    next();
  });

  router.options(['/', '/:id'], (_req, res) => {
    res.setHeader('Tus-Version', TUS_VERSION);
    res.setHeader('Tus-Extension', TUS_EXTENSIONS.join(','));
    res.setHeader('Tus-Max-Size', String(policy.maxBytes));
    res.setHeader('Tus-Checksum-Algorithm', CHECKSUM_ALGORITHMS.join(','));
    res.status(204).end();
  });

  /** The caller's upload: unknown or another key's → 404, terminated/expired → 410. */
  async function load(req: Request, res: Response): Promise<Upload> {
    const id = String(req.params.id ?? '');
    const upload = /^[0-9a-f]{32}$/.test(id) ? await store.get(id) : undefined;
    if (!upload || upload.protocol !== 'tus' || upload.keyId !== res.locals.keyId)
      throw notFound(`no upload ${id}`);
    if (upload.status === 'terminated' || upload.status === 'expired')
      throw new AppError(410, 'UPLOAD_GONE', `upload ${id} was ${upload.status}`);
    return upload;
  }

  /** Appends the request body at the upload's offset (PATCH, or POST with creation-with-upload). */
  async function append(req: Request, upload: Upload, clientOffset: number): Promise<Upload> {
    if (upload.concat === 'final') throw forbidden('a final concatenated upload cannot be patched');
    if (clientOffset !== upload.offset)
      throw conflict(`Upload-Offset ${clientOffset} does not match the upload's offset ${upload.offset}`);
    const checksum = parseChecksum(req.get('upload-checksum'));
    const length = upload.length ?? policy.maxBytes;
    const hashes: Hash[] = checksum ? [createHash(checksum.algorithm)] : [];
    let result: Awaited<ReturnType<typeof files.writeAt>>;
    try {
      result = await files.writeAt(
        upload.dataPath,
        upload.offset,
        req as AsyncIterable<Buffer>,
        length - upload.offset,
        hashes,
      );
    } catch (err) {
      if (err instanceof TooManyBytes) throw payloadTooLarge(`the body goes past Upload-Length ${length}`);
      throw err;
    }
    if (checksum) {
      if (result.interrupted)
        throw new AppError(
          400,
          'CLIENT_ABORTED',
          'the body stopped early; a checksummed chunk is kept only whole',
        );
      const actual = hashes[0]!.digest('base64');
      if (actual !== checksum.digest)
        throw new AppError(
          460,
          'CHECKSUM_MISMATCH',
          `${checksum.algorithm} of the body is ${actual}, Upload-Checksum said ${checksum.digest}`,
        );
    }
    const now = service.clock();
    let next: Upload = {
      ...upload,
      offset: upload.offset + result.bytes,
      updatedAt: now,
      expiresAt: service.expiresFrom(now),
    };
    await store.update(upload.id, { offset: next.offset, updatedAt: now, expiresAt: next.expiresAt });
    // Partial uploads wait, unpublished, to be concatenated.
    // Once: an empty PATCH at the end of a finished upload changes nothing and announces nothing.
    if (
      next.length !== null &&
      next.offset === next.length &&
      next.concat !== 'partial' &&
      upload.status !== 'complete'
    )
      next = await service.complete(next);
    return next;
  }

  /** Holds the upload for this request; a newer request for the same upload takes over. */
  async function exclusive<T>(req: Request, id: string, work: () => Promise<T>): Promise<T> {
    const release = await service.locks.acquire(id, () => req.destroy(), { takeOver: true });
    try {
      return await work();
    } finally {
      release();
    }
  }

  router.post('/', async (req: Request, res: Response) => {
    const concat = parseConcat(req.get('upload-concat'));
    const metadata = parseMetadata(req.get('upload-metadata'));
    if (req.get('upload-defer-length') !== undefined)
      throw badRequest('Upload-Defer-Length is not supported; send Upload-Length');
    let length = intHeader(req.get('upload-length'), 'Upload-Length');
    const id = service.newId();
    const clientFilename = metadata.filename ?? metadata.name ?? `upload-${id}`;

    let parts: Upload[] = [];
    if (concat?.kind === 'final') {
      parts = await Promise.all(
        concat.ids.map(async (partId) => {
          const p = await store.get(partId);
          if (!p || p.protocol !== 'tus' || p.keyId !== res.locals.keyId || p.concat !== 'partial')
            throw badRequest(`${partId} is not a partial upload of yours`);
          if (p.status !== 'active' || p.length === null || p.offset !== p.length)
            throw badRequest(`partial upload ${partId} is not finished`);
          return p;
        }),
      );
      length = parts.reduce((sum, p) => sum + (p.length ?? 0), 0);
    } else if (length === undefined) {
      throw badRequest('Upload-Length is required');
    }
    if (length > policy.maxBytes)
      throw payloadTooLarge(`Upload-Length ${length} is above Tus-Max-Size ${policy.maxBytes}`);
    // Everything that can refuse the request is checked before anything is created.
    const hasBody = Number(req.get('content-length') ?? 0) > 0 || req.get('transfer-encoding') !== undefined;
    if (hasBody && concat?.kind === 'final') throw badRequest('a final concatenation takes no body');
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
    res.setHeader('Location', locationOf(req, id));

    if (concat?.kind === 'final') {
      let offset = 0;
      // The partials are held while they are copied (in id order, so two finals never wait on
      // each other), and checked again once held: a DELETE or another final that got there
      // first leaves nothing to copy.
      const releases: (() => void)[] = [];
      const done = await (async () => {
        for (const pid of [...new Set(parts.map((p) => p.id))].sort())
          releases.push(await service.locks.acquire(pid, () => undefined, { takeOver: false }));
        const held = await Promise.all(parts.map((p) => store.get(p.id)));
        for (const p of held)
          if (!p || p.status !== 'active' || p.offset !== p.length)
            throw conflict(`partial upload ${p?.id ?? ''} is gone or was used by another final upload`);
        for (const p of held) offset += await files.copyInto(p!.dataPath, upload.dataPath, offset);
        await store.update(id, { offset });
        const finished = await service.complete({ ...upload, offset });
        for (const p of held) await service.end(p!, 'terminated');
        return finished;
      })()
        .catch(async (err) => {
          await service.abandon(upload);
          throw err;
        })
        .finally(() => {
          for (const r of releases) r();
        });
      res.setHeader('Upload-Offset', String(done.offset));
      return res.status(201).end();
    }

    if (hasBody) {
      // A body that is refused (too long, bad checksum) takes its upload with it; one that
      // merely stops early leaves a resumable upload, as tus wants.
      const after = await exclusive(req, id, () => append(req, upload, 0)).catch(async (err) => {
        await service.abandon(upload);
        throw err;
      });
      res.setHeader('Upload-Offset', String(after.offset));
      if (after.status === 'active') res.setHeader('Upload-Expires', expires(after));
    } else {
      res.setHeader('Upload-Expires', expires(upload));
    }
    res.status(201).end();
  });

  /**
   * An upload whose every byte is stored but that is not complete: the process died between
   * storing the last offset and publishing the file. A client's HEAD then reads offset ==
   * length and takes the upload as done (tus-js-client calls onSuccess without another PATCH),
   * so the completion that was cut short is done here, under the upload's lock, first.
   */
  async function finishIfWhole(req: Request, res: Response, upload: Upload): Promise<Upload> {
    if (upload.status !== 'active' || upload.length === null || upload.offset !== upload.length)
      return upload;
    if (upload.concat === 'partial') return upload;
    const release = await service.locks.acquire(upload.id, () => undefined, { takeOver: false });
    try {
      const now = await load(req, res);
      if (now.status !== 'active' || now.length === null || now.offset !== now.length) return now;
      return await service.complete(now);
    } finally {
      release();
    }
  }

  router.head('/:id', async (req: Request, res: Response) => {
    const upload = await finishIfWhole(req, res, await load(req, res));
    res.setHeader('Cache-Control', 'no-store');
    if (upload.length !== null) res.setHeader('Upload-Length', String(upload.length));
    res.setHeader('Upload-Offset', String(upload.offset));
    if (Object.keys(upload.metadata).length > 0)
      res.setHeader('Upload-Metadata', formatMetadata(upload.metadata));
    if (upload.concat === 'partial') res.setHeader('Upload-Concat', 'partial');
    if (upload.concat === 'final')
      res.setHeader('Upload-Concat', `final;${upload.concatParts.map((p) => `/files/${p}`).join(' ')}`);
    if (upload.status === 'active') res.setHeader('Upload-Expires', expires(upload));
    res.status(200).end();
  });

  router.patch('/:id', async (req: Request, res: Response) => {
    if (!req.is(OCTETS)) throw unsupportedMediaType(`PATCH needs Content-Type: ${OCTETS}`);
    const clientOffset = intHeader(req.get('upload-offset'), 'Upload-Offset');
    if (clientOffset === undefined) throw badRequest('Upload-Offset is required');
    const first = await load(req, res);
    const after = await exclusive(req, first.id, async () =>
      append(req, await load(req, res), clientOffset),
    ).catch((err) => {
      // Refused before reading: do not read a body we will not use.
      if (err instanceof AppError && [409, 403, 413, 410, 404].includes(err.status))
        res.setHeader('Connection', 'close');
      throw err;
    });
    res.setHeader('Upload-Offset', String(after.offset));
    if (after.status === 'active') res.setHeader('Upload-Expires', expires(after));
    res.status(204).end();
  });

  router.delete('/:id', async (req: Request, res: Response) => {
    const upload = await load(req, res);
    await exclusive(req, upload.id, async () => {
      const current = await load(req, res);
      if (current.status === 'complete' && current.dataPath.startsWith('files/'))
        await files.remove(current.dataPath);
      await service.end(current, 'terminated');
    });
    res.status(204).end();
  });

  return router;
}
