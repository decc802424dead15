import type { Request, Response } from 'express';
import type { UploadPolicy } from '../../domain/upload-service';
import { CHECKSUM_ALGORITHMS, TUS_EXTENSIONS, TUS_VERSION } from './headers';

/**
 * OPTIONS: "A successful response indicated by the 204 No Content or 200 OK status MUST contain
 * the Tus-Version header. It MAY include the Tus-Extension and Tus-Max-Size headers."
 * Checksum: "The Tus-Checksum-Algorithm header MUST be included in the response to an OPTIONS
 * request."
 */
export function optionsHandler(policy: UploadPolicy) {
  return (_req: Request, res: Response): void => {
    res.setHeader('Tus-Version', TUS_VERSION);
    res.setHeader('Tus-Extension', TUS_EXTENSIONS.join(','));
    // "The Server SHOULD set this header if there is a known hard limit."
    res.setHeader('Tus-Max-Size', String(policy.maxBytes));
    res.setHeader('Tus-Checksum-Algorithm', CHECKSUM_ALGORITHMS.join(','));
    res.status(204).end();
  };
}
