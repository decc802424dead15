import type { Operation } from './openapi';
import type { RawRequest } from './raw-http';
import type { ServiceName } from './stack';

/** A request before it becomes bytes: mutations work on this. */
export interface RequestSpec {
  method: string;
  /** The path with its parameters filled in, percent-encoded exactly as it will be sent. */
  path: string;
  /** `name=value` pieces, already encoded. */
  query: string[];
  headers: [string, string | Buffer][];
  body?: Buffer;
  /** Sent as the Content-Type header when set. */
  contentType?: string;
}

/**
 * What counts as a right answer for one input. Always wrong, whatever this says: no answer
 * within 10 s, a 5xx, a 3xx, a switch of protocols, a 4xx that is not problem+json, a dead
 * service afterwards, leftovers in temp folders.
 */
export interface Expectation {
  /** The input may be valid: a 2xx is right (otherwise only a 4xx is). */
  accept2xx: boolean;
  /** Only these statuses are right (e.g. 401 for a missing key). */
  exact?: number[];
  /** 4xx statuses that are wrong here (e.g. 401/403 when the key has the scope). */
  forbid?: number[];
  /** The server may close without answering (a truncated or oversized body). */
  closeOk?: boolean;
  /** A bare 4xx from Node's HTTP parser with the close is fine (a truncated body). */
  bareOk?: boolean;
  /** Counts must not change whatever the answer: no key, a key without the scope. */
  noChange?: boolean;
  /** Only the auth rule is judged (the authorization matrix). */
  authOnly?: boolean;
}

export interface Case {
  id: number;
  op: Operation;
  /** The input class, e.g. "json-wrong-type"; wrong answers are grouped by it. */
  cls: string;
  /** What exactly this input is, in a few words. */
  label: string;
  request: RawRequest;
  /** The service or gateway port it goes to. */
  to: ServiceName;
  /** Cases of one lane run one at a time, so counts before and after belong to one input. */
  lane: ServiceName;
  expect: Expectation;
  /** A check of its own after the answer; returns what is wrong, if anything. */
  verify?: () => Promise<string | undefined>;
  /** Runs just before the request (e.g. makes a fresh upload for the override check). */
  prepare?: () => Promise<void>;
}

/** The request as bytes-to-be: Content-Type and an honest Content-Length added. */
export function toRaw(spec: RequestSpec, extra: Partial<RawRequest> = {}): RawRequest {
  const headers: [string, string | Buffer][] = [...spec.headers];
  if (spec.contentType !== undefined) headers.push(['Content-Type', spec.contentType]);
  const lying = headers.some(([n]) => /^(content-length|transfer-encoding)$/i.test(n));
  if (spec.body !== undefined && !lying && !extra.chunked)
    headers.push(['Content-Length', String(spec.body.length)]);
  if (extra.chunked) headers.push(['Transfer-Encoding', 'chunked']);
  const target = spec.query.length > 0 ? `${spec.path}?${spec.query.join('&')}` : spec.path;
  return { method: spec.method, target, headers, body: spec.body, ...extra };
}
