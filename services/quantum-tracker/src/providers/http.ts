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
  /** Ends the call (and its retries) when the sync is stopped or past its deadline. */
  signal?: AbortSignal;
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

/** The longest wait a provider's Retry-After is taken for: a day (a larger one is a day). */
export const MAX_RETRY_AFTER_MS = 86_400_000;

/**
 * Retry-After in whole ms, at most a day. RFC 9110 §10.2.3: "Retry-After = HTTP-date /
 * delay-seconds", delay-seconds = 1*DIGIT; anything else (1.5, 1e3, -1) is not a delay.
 */
export function retryAfterMs(header: string | null, now = Date.now()): number | undefined {
  if (!header) return undefined;
  const value = header.trim();
  if (/^\d+$/.test(value)) return Math.min(Number(value) * 1000, MAX_RETRY_AFTER_MS);
  // An HTTP-date starts with its day name (IMF-fixdate and both obsolete forms); Date.parse
  // alone would read "1.5" or "-1" as years.
  if (!/^(Mon|Tue|Wed|Thu|Fri|Sat|Sun)/i.test(value)) return undefined;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.min(Math.max(0, at - now), MAX_RETRY_AFTER_MS);
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
    o.signal?.throwIfAborted();
    try {
      const deadline = AbortSignal.timeout(o.timeoutMs);
      res = await (o.fetch ?? fetch)(url, {
        ...init,
        signal: o.signal ? AbortSignal.any([deadline, o.signal]) : deadline,
      });
    } catch (err) {
      const e = err as Error;
      if (o.signal?.aborted) throw o.signal.reason;
      lastError = new ProviderError(
        o.provider,
        0,
        e.name === 'TimeoutError' ? `no answer in ${o.timeoutMs} ms` : e.message,
      );
      if (attempt < tries) await sleep((o.backoffMs ?? 500) * 2 ** (attempt - 1), o.signal);
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
    await sleep(delay, o.signal);
  }
  throw lastError!;
}

/** Waits, or rejects with the signal's reason as soon as it is aborted. */
const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', abort);
    };
    const abort = () => {
      done();
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      done();
      resolve();
    }, ms);
    signal?.addEventListener('abort', abort, { once: true });
  });

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

/** A finite number that is not negative, or null (billed time below zero is not a time). */
export function nonNegative(v: unknown): number | null {
  const n = num(v);
  return n === null || n < 0 ? null : n;
}

/** Epoch values at or above this are milliseconds (1e11 s is the year 5138). */
const MS_EPOCH_FROM = 1e11;
/** Timestamps outside 1970-01-01 … 2200-01-01 are not ones a provider means. */
const LATEST_MS = Date.UTC(2200, 0, 1);
/** An ISO date-time with no zone: providers mean UTC, never the tracker host's local time. */
const ZONELESS = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/;

/**
 * An ISO timestamp from an ISO string, epoch seconds or epoch milliseconds; null when absent,
 * unreadable or out of range, so one odd field never fails a whole sync.
 */
export function isoTime(v: unknown): string | null {
  let t: number;
  if (typeof v === 'number' && Number.isFinite(v)) t = v >= MS_EPOCH_FROM ? v : v * 1000;
  else if (typeof v === 'string' && v !== '')
    t = Date.parse(ZONELESS.test(v) ? `${v.replace(' ', 'T')}Z` : v);
  else return null;
  return Number.isFinite(t) && t >= 0 && t < LATEST_MS ? new Date(t).toISOString() : null;
}

/**
 * An error's message fit to store and publish: a database error's SQL (knex puts the whole
 * statement, job data included, before " - ") is dropped, and the rest cut to `max` characters.
 */
export function shortError(err: { message: string; sql?: unknown }, max = 300): string {
  let m = err.message;
  if (typeof err.sql === 'string' || /^(insert|update|select|delete|with)\s/i.test(m)) {
    const cut = m.lastIndexOf(' - ');
    m = cut >= 0 ? `database: ${m.slice(cut + 3)}` : 'database error';
  }
  return m.length > max ? `${m.slice(0, max - 1)}…` : m;
}
