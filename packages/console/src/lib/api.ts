/**
 * Every call the console makes: to the gateway's origin, with the signed-in key in X-API-Key
 * (never in a URL), answers parsed as JSON, refusals as `ApiError` with the problem+json detail.
 */

const KEY_ITEM = 'qlab.apiKey';

/** The key lives in sessionStorage: gone when the tab closes, never sent anywhere but X-API-Key. */
export const storedKey = {
  get: (): string | null => sessionStorage.getItem(KEY_ITEM),
  set: (key: string) => sessionStorage.setItem(KEY_ITEM, key),
  clear: () => sessionStorage.removeItem(KEY_ITEM),
};

/** A refused or failed call: `status` and the problem document's `detail` (or title). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly problem?: Record<string, unknown>,
  ) {
    super(message);
  }
}

/** Called when the gateway answers 401 (a revoked or expired key): the app signs out. */
let onUnauthorized: () => void = () => undefined;
export function whenUnauthorized(handler: () => void): void {
  onUnauthorized = handler;
}

export interface CallOptions {
  method?: string;
  json?: unknown;
  body?: BodyInit;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Use this key instead of the stored one (the sign-in form checks a key before keeping it). */
  key?: string;
}

/** The raw response of a call that succeeded (downloads read it as a stream or blob). */
export async function call(path: string, options: CallOptions = {}): Promise<Response> {
  const key = options.key ?? storedKey.get();
  const headers: Record<string, string> = { Accept: 'application/json', ...options.headers };
  if (key) headers['X-API-Key'] = key;
  let body = options.body;
  if (options.json !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(options.json);
  }
  const res = await fetch(path, { method: options.method ?? 'GET', headers, body, signal: options.signal });
  if (res.ok) return res;
  let problem: Record<string, unknown> | undefined;
  const type = res.headers.get('content-type') ?? '';
  if (type.includes('json')) problem = (await res.json().catch(() => undefined)) as typeof problem;
  const detail = (problem?.detail ?? problem?.title ?? problem?.message ?? res.statusText) as string;
  if (res.status === 401 && !options.key) onUnauthorized();
  throw new ApiError(res.status, `${res.status}: ${detail || 'request failed'}`, problem);
}

/** A call answered with JSON (204: undefined). */
export async function api<T>(path: string, options: CallOptions = {}): Promise<T> {
  const res = await call(path, options);
  if (res.status === 204) return undefined as T;
  return (await res.json()) as T;
}

/** `?a=1&b=x` from the defined values only. */
export function query(params: Record<string, string | number | boolean | undefined | null>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params))
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}

/** Saves a response as a file: the browser streams it to disk through an object URL. */
export async function download(path: string, filename: string, method = 'GET'): Promise<void> {
  const res = await call(path, { method, headers: { Accept: '*/*' } });
  const blob = await res.blob();
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
