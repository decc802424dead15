import type { Upstream, UpstreamId } from './config';

export type Fetched<T = unknown> =
  | { ok: true; service: UpstreamId; data: T }
  | { ok: false; service: UpstreamId; error: string; status?: number; disabled?: true };

/** GET a JSON document from a service with its token and a deadline; never throws. */
export async function fetchJson<T = unknown>(
  u: Upstream,
  path: string,
  timeoutMs: number,
): Promise<Fetched<T>> {
  if (u.disabled)
    return { ok: false, service: u.id, error: 'disabled in the gateway --config', disabled: true };
  try {
    const res = await fetch(`${u.url}${path}`, {
      headers: { accept: 'application/json', ...(u.token ? { authorization: `Bearer ${u.token}` } : {}) },
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (!res.ok)
      return { ok: false, service: u.id, status: res.status, error: `${res.status} ${res.statusText}` };
    return { ok: true, service: u.id, data: (await res.json()) as T };
  } catch (err) {
    const e = err as Error;
    return {
      ok: false,
      service: u.id,
      error:
        e.name === 'TimeoutError'
          ? `no answer within ${timeoutMs} ms`
          : ((e.cause as Error)?.message ?? e.message),
    };
  }
}
