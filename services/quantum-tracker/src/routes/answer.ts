import type { Request, Response } from 'express';
import type { AnswerCache } from '../answer-cache';

export const NO_PROVIDER_NOTICE =
  'No quantum provider is configured: set IBM_QUANTUM_TOKEN and IBM_QUANTUM_INSTANCE, or IONQ_API_KEY. The tracker serves only data recorded from real providers, so there is none to show.';

/** How every /api/v1 handler answers: it returns the body, `answer` sends it. */
export interface Answering {
  cache: AnswerCache;
  /** Changes whenever recorded data may have changed (each finished sync). */
  dataVersion: () => number;
  /** A provider is configured; without one every answer carries the notice and nothing is cached. */
  configured: boolean;
}

export type Answer = (
  handler: (req: Request) => Promise<unknown>,
) => (req: Request, res: Response) => Promise<void>;

/**
 * Wraps a handler that returns its JSON body:
 * - with no provider, an object body gets the NO_PROVIDER_NOTICE next to its (empty) data;
 * - a GET's answer is kept in the cache under its whole URL (parameters included), for the
 *   request listener to serve before Express (fast-answers.ts). The data version is read before
 *   the handler runs, so an answer computed while a sync was recording is never kept as current.
 * A handler that throws answers through the kit's problem+json handler, and nothing is cached.
 */
export function answerWith(a: Answering): Answer {
  return (handler) => async (req, res) => {
    const version = a.dataVersion();
    const body = await handler(req);
    const sent =
      !a.configured && body && typeof body === 'object' && !Array.isArray(body)
        ? { ...body, notice: NO_PROVIDER_NOTICE }
        : body;
    const text = JSON.stringify(sent);
    if (a.configured && req.method === 'GET') a.cache.put(req.originalUrl, text, version);
    res.type('application/json').send(text);
  };
}
