import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { bearerToken, constantTimeEqual } from '@qlab/kit';
import type { Express } from 'express';
import type { AnswerCache } from './answer-cache';

/**
 * The server's request listener: a GET whose answer is cached (see AnswerCache) is sent straight
 * away, past Express's middleware (logging, metrics, CORS), which costs more than the answer;
 * everything else, and every miss, goes to the app.
 */
export function withFastAnswers(app: Express, cache: AnswerCache, apiToken?: string): RequestListener {
  return (req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? '/';
    // A method override is the app's to refuse (kit request-target.ts), so it never hits the cache.
    const plainGet = req.method === 'GET' && req.headers['x-http-method-override'] === undefined;
    if (plainGet && url.startsWith('/api/v1/') && !url.startsWith('/api/v1/ws/')) {
      const authorized =
        !apiToken || constantTimeEqual(bearerToken(req.headers.authorization) ?? '', apiToken);
      const hit = authorized ? cache.peek(url) : undefined;
      if (hit !== undefined) {
        const origin = req.headers.origin;
        res.writeHead(200, {
          'content-type': 'application/json; charset=utf-8',
          'content-length': Buffer.byteLength(hit),
          ...(origin ? { 'access-control-allow-origin': origin, vary: 'Origin' } : {}),
        });
        res.end(hit);
        return;
      }
    }
    app(req, res);
  };
}
