import { type AsyncApiDocument, mergeAsyncApi } from '@qlab/events';
import type { Upstream } from './config';
import { rebuiltDocument } from './rebuilt-document';
import { fetchJson } from './upstream-client';

/**
 * /asyncapi.json of the whole system: every reachable service's document (each serves its own
 * event catalogue, src/events.ts) in one AsyncAPI 3.0 document. A service that does not answer
 * is named in the description and in `x-qlab-missing-services`.
 */
export function mergedAsyncApi(upstreams: Upstream[], timeoutMs: number): () => Promise<AsyncApiDocument> {
  return rebuiltDocument(async () => {
    const docs = await Promise.all(
      upstreams.map((u) => fetchJson<AsyncApiDocument>(u, '/asyncapi.json', timeoutMs)),
    );
    // A service that answers something other than its AsyncAPI document is missing too.
    const missing = docs.filter((d) => (d.ok ? !isAsyncApi(d.data) : !d.disabled)).map((d) => d.service);
    const doc = mergeAsyncApi(
      docs.flatMap((d) => (d.ok && isAsyncApi(d.data) ? [d.data] : [])),
      {
        title: 'qlab events',
        description:
          'Every CloudEvent the qlab services publish on MQTT, one channel per type (qlab/<service>/<type>). Browsers and scripts without MQTT get them through the gateway WebSocket /api/events?topic=<filter>.' +
          (missing.length > 0
            ? ` (Not included, unreachable when this was built: ${missing.join(', ')}.)`
            : ''),
      },
    );
    return {
      doc: missing.length > 0 ? { ...doc, 'x-qlab-missing-services': missing } : doc,
      complete: missing.length === 0,
    };
  });
}

/** Only a service's own AsyncAPI 3 document is merged (an old or foreign answer is skipped). */
function isAsyncApi(d: unknown): d is AsyncApiDocument {
  const doc = d as Partial<AsyncApiDocument> | null;
  return (
    doc !== null &&
    typeof doc === 'object' &&
    doc.asyncapi === '3.0.0' &&
    typeof doc.channels === 'object' &&
    typeof doc.operations === 'object' &&
    typeof doc.components?.messages === 'object'
  );
}
