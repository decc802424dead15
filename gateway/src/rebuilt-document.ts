/**
 * A document the gateway builds from its services' own (OpenAPI, AsyncAPI): built on first
 * use and kept for a minute, or for 5 s when a service was missing from it, so a service that
 * comes back is in the next one soon. Concurrent callers share one build; a failed build is
 * not kept.
 */
export function rebuiltDocument<T>(build: () => Promise<{ doc: T; complete: boolean }>): () => Promise<T> {
  let cached: { until: number; doc: Promise<T> } | undefined;
  const rebuild = () => {
    const entry = {
      until: Number.POSITIVE_INFINITY,
      doc: build().then(({ doc, complete }) => {
        entry.until = Date.now() + (complete ? 60_000 : 5_000);
        return doc;
      }),
    };
    entry.doc.catch(() => {
      if (cached === entry) cached = undefined;
    });
    return entry;
  };
  return () => {
    if (!cached || Date.now() > cached.until) cached = rebuild();
    return cached.doc;
  };
}
