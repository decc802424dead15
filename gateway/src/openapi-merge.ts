import type { OpenApiDocument } from '@qlab/kit';
import { MOUNTED, toPublicPath } from '@qlab/registry';
import type { Upstream, UpstreamId } from './config';
import { gatewayOpenApi } from './openapi';
import { MOUNTS, scopeForProxied } from './proxy';
import { rebuiltDocument } from './rebuilt-document';
import { fetchJson } from './upstream-client';

const KIT_PATHS = new Set(['/health', '/ready', '/metrics', '/openapi.json', '/asyncapi.json', '/docs']);

/** A service path → its public path through the gateway (the mounts, backwards). */
export function publicPath(service: UpstreamId, path: string): string | undefined {
  if (KIT_PATHS.has(path)) return undefined;
  const mount = MOUNTED.find((s) => s.id === service)?.mount;
  return mount && toPublicPath(mount, path);
}

/**
 * One document for the whole API: the gateway's own paths plus every reachable service's,
 * re-rooted under its mount and tagged with the service (kept as rebuilt-document.ts says).
 */
export function mergedOpenApi(upstreams: Upstream[], timeoutMs: number): () => Promise<OpenApiDocument> {
  return rebuiltDocument(async () => {
    const doc = gatewayOpenApi();
    const paths = doc.paths as Record<string, unknown>;
    const missing: string[] = [];
    const docs = await Promise.all(
      upstreams.map((u) => fetchJson<OpenApiDocument>(u, '/openapi.json', timeoutMs)),
    );
    for (const d of docs) {
      if (!d.ok) {
        missing.push(d.service);
        continue;
      }
      for (const [path, item] of Object.entries(
        (d.data.paths ?? {}) as Record<string, Record<string, { tags?: string[] }>>,
      )) {
        const pub = publicPath(d.service, path);
        const mount = MOUNTS.find((m) => m.service === d.service);
        if (!pub || !mount) continue;
        const rest = pub.slice(mount.prefix.length) || '/';
        const ops = Object.fromEntries(
          Object.entries(item).map(([method, op]) => [
            method,
            {
              ...op,
              tags: [d.service],
              security: [{ apiKey: [] }],
              // The scope the gateway will ask for (the same function decides it: proxy.ts).
              'x-qlab-scope': scopeForProxied(mount, method.toUpperCase(), rest),
            },
          ]),
        );
        paths[pub] = { ...(paths[pub] as object), ...ops };
      }
    }
    if (missing.length > 0) {
      (doc.info as { description: string }).description +=
        ` (Not included, unreachable when this was built: ${missing.join(', ')}.)`;
    }
    return { doc, complete: missing.length === 0 };
  });
}
