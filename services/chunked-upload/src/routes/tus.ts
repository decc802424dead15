import { serviceRouter } from '@qlab/kit';
import type { Router } from 'express';
import type { UploadService } from '../domain/upload-service';
import { TusContext } from '../protocol/tus/context';
import { deleteHandler } from '../protocol/tus/delete-handler';
import { headHandler } from '../protocol/tus/head-handler';
import { optionsHandler } from '../protocol/tus/options-handler';
import { patchHandler } from '../protocol/tus/patch-handler';
import { postHandler } from '../protocol/tus/post-handler';
import { tusVersionCheck } from '../protocol/tus/version-check';

/**
 * tus 1.0 at /files: core (HEAD, PATCH, OPTIONS) and the creation, creation-with-upload,
 * termination, checksum, expiration and concatenation extensions; one handler per method in
 * src/protocol/tus/, each quoting the spec lines it implements. Offsets are acknowledged only
 * after the bytes are fsynced, so a crash loses nothing that was acknowledged.
 */
export function tusRoutes(service: UploadService): Router {
  const ctx = new TusContext(service);
  const router = serviceRouter();
  router.use(tusVersionCheck);
  router.options(['/', '/:id'], optionsHandler(service.policy));
  router.post('/', postHandler(ctx));
  router.head('/:id', headHandler(ctx));
  router.patch('/:id', patchHandler(ctx));
  router.delete('/:id', deleteHandler(ctx));
  return router;
}
