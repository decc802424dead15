import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Express } from 'express';

/**
 * Where ReDoc's standalone bundle is: next to the built service (scripts/bundle-redoc.cjs
 * copies it there), or the dev dependency when running from source.
 */
function bundlePath(): string | undefined {
  const built = path.join(__dirname, 'redoc.standalone.js');
  if (existsSync(built)) return built;
  try {
    return require.resolve('redoc/bundles/redoc.standalone.js');
  } catch {
    return undefined;
  }
}

/**
 * /redoc, as the seed's FastAPI served it: ReDoc over /openapi.json, every byte from this
 * service (no CDN). Open like /docs.
 */
export function serveRedoc(app: Express, title: string): void {
  const bundle = bundlePath();
  app.get('/redoc', (_req, res) => {
    if (!bundle) {
      res
        .status(503)
        .type('text/plain')
        .send('ReDoc is not bundled in this build (see scripts/bundle-redoc.cjs)');
      return;
    }
    res
      .type('html')
      .send(
        `<!doctype html><html><head><meta charset="utf-8"><title>${title}</title><meta name="viewport" content="width=device-width, initial-scale=1"></head><body><redoc spec-url="/openapi.json"></redoc><script src="/redoc/redoc.standalone.js"></script></body></html>`,
      );
  });
  app.get('/redoc/redoc.standalone.js', (_req, res) => {
    if (!bundle) return void res.status(404).end();
    res.setHeader('Cache-Control', 'public, max-age=86400');
    // The dev dependency sits under node_modules/.pnpm: a dot folder send would refuse.
    res.sendFile(bundle, { dotfiles: 'allow' });
  });
}
