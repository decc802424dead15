import { AppError } from '@qlab/kit';
import type { NextFunction, Request, Response } from 'express';
import { TUS_VERSION } from './headers';

/**
 * "The Tus-Resumable header MUST be included in every request and response except for OPTIONS
 * requests." "If the version specified by the Client is not supported by the Server, it MUST
 * respond with the 412 Precondition Failed status and MUST include the Tus-Version header into
 * the response. In addition, the Server MUST NOT process the request."
 *
 * X-HTTP-Method-Override ("MUST be interpreted as the request's method by the Server") was
 * applied by the kit before authentication (request-target.ts), so req.method is already the
 * method the gateway judged.
 */
export function tusVersionCheck(req: Request, res: Response, next: NextFunction): void {
  res.setHeader('Tus-Resumable', TUS_VERSION);
  // OPTIONS: "The Client SHOULD NOT include the Tus-Resumable header in the request and the
  // Server MUST ignore the header."
  const version = req.headers['tus-resumable'];
  if (req.method !== 'OPTIONS' && version !== TUS_VERSION) {
    res.setHeader('Tus-Version', TUS_VERSION);
    next(
      new AppError(
        412,
        'TUS_VERSION_UNSUPPORTED',
        `Tus-Resumable must be ${TUS_VERSION}, got ${JSON.stringify(version ?? null)}`,
      ),
    );
    return;
  }
  next();
}
