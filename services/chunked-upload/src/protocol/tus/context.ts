import { AppError, notFound, publicUrl } from '@qlab/kit';
import type { Request, Response } from 'express';
import type { Upload } from '../../domain/upload';
import type { UploadService } from '../../domain/upload-service';

export const OCTETS = 'application/offset+octet-stream';

/** What every tus handler needs: the service, and the few steps they share (tus-node-server's BaseHandler). */
export class TusContext {
  constructor(readonly service: UploadService) {}

  /**
   * The caller's upload. "If the resource is not found, the Server SHOULD return either the
   * 404 Not Found, 410 Gone or 403 Forbidden status": unknown or another key's is 404 (its
   * existence is not told), terminated or expired is 410 ("The latter one SHOULD be used if the
   * server is keeping track of expired uploads").
   */
  async load(req: Request, res: Response): Promise<Upload> {
    const id = String(req.params.id ?? '');
    const upload = /^[0-9a-f]{32}$/.test(id) ? await this.service.store.get(id) : undefined;
    if (!upload || upload.protocol !== 'tus' || upload.keyId !== res.locals.keyId)
      throw notFound(`no upload ${id}`);
    if (upload.status === 'terminated' || upload.status === 'expired')
      throw new AppError(410, 'UPLOAD_GONE', `upload ${id} was ${upload.status}`);
    return upload;
  }

  /** Holds the upload for this request; a newer request for the same upload takes over (the old socket is cut). */
  async exclusive<T>(req: Request, id: string, work: () => Promise<T>): Promise<T> {
    const release = await this.service.locks.acquire(id, () => req.destroy(), { takeOver: true });
    try {
      return await work();
    } finally {
      release();
    }
  }

  /** "The value of the Upload-Expires header MUST be in RFC 9110 datetime format." */
  expires(upload: Upload): string {
    return new Date(upload.expiresAt).toUTCString();
  }

  locationOf(req: Request, id: string): string {
    return publicUrl(req, `/files/${id}`);
  }
}
