import type { Request, Response } from 'express';
import type { TusContext } from './context';

/**
 * Termination: "When receiving a DELETE request for an existing upload the Server SHOULD free
 * associated resources and MUST respond with the 204 No Content status confirming that the
 * upload was terminated. For all future requests to this URL, the Server SHOULD respond with
 * the 404 Not Found or 410 Gone status."
 */
export function deleteHandler(ctx: TusContext) {
  return async (req: Request, res: Response): Promise<void> => {
    const upload = await ctx.load(req, res);
    await ctx.exclusive(req, upload.id, async () => {
      const current = await ctx.load(req, res);
      // The published file goes too, unless a later upload has been published under its name
      // since (the file was moved away, and the name was free again): that file is not this one.
      if (
        current.status === 'complete' &&
        current.dataPath.startsWith('files/') &&
        !(await ctx.service.store.publishedLater(current))
      )
        await ctx.service.files.remove(current.dataPath);
      await ctx.service.end(current, 'terminated');
    });
    res.status(204).end();
  };
}
