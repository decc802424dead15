/** A provider call that failed: its HTTP status (0 for network), message and any Retry-After. */
export class ProviderError extends Error {
  constructor(
    readonly provider: string,
    readonly status: number,
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(`${provider}: ${message}`);
    this.name = 'ProviderError';
  }
}

export interface HttpOptions {
  provider: string;
  timeoutMs: number;
  /** Tries for 429 and 5xx (Retry-After honoured up to maxRetryWaitMs). Default 3. */
  tries?: number;
  maxRetryWaitMs?: number;
  /** Base of the exponential backoff between tries. Default 500 ms. */
  backoffMs?: number;
  /** Statuses tried again: each provider's own clients' list (see ibm.ts, ionq.ts). */
  retried: ReadonlySet<number>;
  /** The fetch to use (tests route provider hosts to a local fake). Default: global fetch. */
  fetch?: typeof fetch;
}

/** Retry-After as seconds or an HTTP date, in ms. */
export function retryAfterMs(header: string | null, now = Date.now()): number | undefined {
  if (!header) return undefined;
  const secs = Number(header);
  if (Number.isFinite(secs) && secs >= 0) return secs * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** The error text providers put in their bodies (IBM errors[], IonQ message, legacy error.message). */
function errorText(body: unknown, fallback: string): string {
  const b = body as {
    errors?: { message?: string }[];
    message?: string;
    error?: string | { message?: string };
    errorMessage?: string;
  } | null;
  if (!b || typeof b !== 'object') return fallback;
  return (
    b.errors?.[0]?.message ??
    b.message ??
    b.errorMessage ??
    (typeof b.error === 'string' ? b.error : b.error?.message) ??
    fallback
  );
}

/**
 * GET/POST JSON with a deadline per try, retries for 429/5xx with Retry-After or exponential
 * backoff, and errors that say which provider and what status.
 */
export async function requestJson<T>(url: string, init: RequestInit, o: HttpOptions): Promise<T> {
  const tries = o.tries ?? 3;
  let lastError: ProviderError | undefined;
  for (let attempt = 1; attempt <= tries; attempt++) {
    let res: Response;
    try {
      res = await (o.fetch ?? fetch)(url, { ...init, signal: AbortSignal.timeout(o.timeoutMs) });
    } catch (err) {
      const e = err as Error;
      lastError = new ProviderError(
        o.provider,
        0,
        e.name === 'TimeoutError' ? `no answer in ${o.timeoutMs} ms` : e.message,
      );
      if (attempt < tries) await sleep((o.backoffMs ?? 500) * 2 ** (attempt - 1));
      continue;
    }
    const text = await res.text();
    let body: unknown;
    try {
      body = text === '' ? undefined : JSON.parse(text);
    } catch {
      if (res.ok)
        throw new ProviderError(o.provider, res.status, `malformed JSON from ${new URL(url).pathname}`);
    }
    if (res.ok) return body as T;
    const wait = retryAfterMs(res.headers.get('retry-after'));
    lastError = new ProviderError(
      o.provider,
      res.status,
      `${res.status} ${errorText(body, res.statusText)}`,
      wait,
    );
    if (!o.retried.has(res.status) || attempt === tries) break;
    const delay = wait ?? (o.backoffMs ?? 500) * 2 ** (attempt - 1);
    if (delay > (o.maxRetryWaitMs ?? 30_000)) break; // the sync loop waits instead
    await sleep(delay);
  }
  throw lastError!;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A finite number or null: provider fields are often missing or null. */
export function num(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v)
    ? v
    : typeof v === 'string' && v !== '' && Number.isFinite(Number(v))
      ? Number(v)
      : null;
}

export function str(v: unknown): string | null {
  return typeof v === 'string' && v !== '' ? v : null;
}

/** An ISO timestamp from an ISO string or epoch seconds; null when absent or unreadable. */
export function isoTime(v: unknown): string | null {
  if (typeof v === 'number' && Number.isFinite(v)) return new Date(v * 1000).toISOString();
  if (typeof v === 'string') {
    const t = Date.parse(v);
    return Number.isNaN(t) ? null : new Date(t).toISOString();
  }
  return null;
}
