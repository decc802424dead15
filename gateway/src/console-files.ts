import { existsSync } from 'node:fs';
import path from 'node:path';
import { notFound } from '@qlab/kit';
import express, { type NextFunction, type Request, type Response, type Router } from 'express';

/**
 * The console's Content-Security-Policy: its own scripts only, no eval, no inline script, no
 * plug-ins, not framed; fetch and WebSocket to this origin only ('self' covers ws: and wss: of
 * the same host, CSP Level 3 §6.7.2.5). Styles may be inline: uPlot and Uppy set style
 * attributes, and a style cannot run code.
 */
export const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "connect-src 'self'",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/**
 * The console's own pages: `/` and the paths under its sections (app.tsx routes). Only these
 * answer index.html; anything else (`/api;x`, `/API/keys`, `/docs`) stays the 404 or the answer
 * it was, so an API path in any spelling never draws the page.
 */
const CONSOLE_PAGE = /^\/((calibrations|uploads|jobs|quantum|analytics|keys)(\/[^;]*)?)?$/;

function secure(res: Response): void {
  res.setHeader('Content-Security-Policy', CONSOLE_CSP);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
}

/**
 * The built console (packages/console/dist) at `/`: files under /assets/ carry a content hash in
 * their names and are cached for a year (immutable); index.html is revalidated on every load
 * (`no-cache`), so a new build is seen at once. A GET of a console page path (/jobs/<id>,
 * /calibrations/abc) answers index.html, and the console's router draws that page: deep links
 * work on reload. Undefined when the folder holds no build.
 */
export function consoleFiles(dir: string): Router | undefined {
  const index = path.join(dir, 'index.html');
  if (!existsSync(index)) return undefined;
  // Paths are case-sensitive like every other gateway path: /ASSETS/x is not an asset.
  const router = express.Router({ caseSensitive: true });
  router.use(
    '/assets',
    express.static(path.join(dir, 'assets'), {
      index: false,
      immutable: true,
      maxAge: '365d',
      setHeaders: secure,
    }),
  );
  // A missing asset (an old build's name) is a 404 problem, not the page and not a 500.
  router.use('/assets', (req: Request, _res: Response, next: NextFunction) =>
    next(
      req.method === 'GET' || req.method === 'HEAD' ? notFound(`no console asset ${req.path}`) : undefined,
    ),
  );
  router.use(
    express.static(dir, {
      index: false,
      maxAge: 0,
      setHeaders: (res) => {
        secure(res);
        res.setHeader('Cache-Control', 'no-cache');
      },
    }),
  );
  router.use((req: Request, res: Response, next: NextFunction) => {
    if ((req.method !== 'GET' && req.method !== 'HEAD') || !CONSOLE_PAGE.test(req.path)) return next();
    secure(res);
    res.setHeader('Cache-Control', 'no-cache');
    res.sendFile(index, (err) => err && next(err));
  });
  return router;
}

/** Where the console build is: GATEWAY_CONSOLE_DIR, else the workspace's packages/console/dist. */
export function defaultConsoleDir(): string {
  return path.resolve(__dirname, '..', '..', 'packages', 'console', 'dist');
}
