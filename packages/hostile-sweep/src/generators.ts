import fc from 'fast-check';
import type { Expectation, RequestSpec } from './cases';
import type { Fixtures } from './fixtures';
import type { Operation } from './openapi';
import type { RawRequest } from './raw-http';

/**
 * fast-check is the generator: every random choice of the sweep is `fc.sample` of an
 * arbitrary, seeded from the run's seed and the (operation, input class) it is for. The same
 * seed gives the same inputs, and adding an operation does not shift the inputs of others.
 */

/** An input before it is numbered and put in a lane. */
export interface Draft {
  op: Operation;
  cls: string;
  label: string;
  request: RawRequest;
  expect: Expectation;
  verify?: () => Promise<string | undefined>;
  prepare?: () => Promise<void>;
}

export interface GenContext {
  fx: Fixtures;
  seed: number;
  /** Multiplies how many random inputs each class draws (HOSTILE_RUNS). */
  scale: number;
  /** Operations by `${via} ${method} ${template}`: an override borrows its sibling's headers and body. */
  byKey: Map<string, Operation>;
  /** Port of the target an operation's requests go to (for absolute-form targets). */
  portOf: (op: Operation) => number;
}

/** FNV-1a over the parts: a stable 32-bit seed per (run seed, operation, class). */
export function seedFor(seed: number, ...parts: string[]): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (const ch of parts.join('\u0000')) {
    h ^= ch.charCodeAt(0);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h | 0;
}

export function draw<T>(arb: fc.Arbitrary<T>, seed: number, n: number): T[] {
  if (n <= 0) return [];
  return fc.sample(arb, { seed, numRuns: n });
}

/** `n` distinct items of a curated list, in a seeded order. */
export function someOf<T>(list: readonly T[], n: number, seed: number): T[] {
  const k = Math.min(n, list.length);
  if (k <= 0) return [];
  return draw(fc.shuffledSubarray([...list], { minLength: k, maxLength: k }), seed, 1)[0]!;
}

/** Every byte that is not unreserved, percent-encoded (so random text survives as one segment). */
export function percentEncode(text: string): string {
  let out = '';
  for (const b of Buffer.from(text, 'utf8')) {
    const c = String.fromCharCode(b);
    out += /[A-Za-z0-9_.~-]/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** Random text, emoji and control characters included. */
export const randomText = fc.string({ unit: 'binary', minLength: 1, maxLength: 40 });

export const refuse = (extra: Partial<Expectation> = {}): Expectation => ({ accept2xx: false, ...extra });
export const either = (extra: Partial<Expectation> = {}): Expectation => ({ accept2xx: true, ...extra });

export function withHeaders(spec: RequestSpec, headers: [string, string | Buffer][]): RequestSpec {
  const names = new Set(headers.map(([n]) => n.toLowerCase()));
  return { ...spec, headers: [...spec.headers.filter(([n]) => !names.has(n.toLowerCase())), ...headers] };
}

export function withoutHeader(spec: RequestSpec, name: string): RequestSpec {
  return { ...spec, headers: spec.headers.filter(([n]) => n.toLowerCase() !== name.toLowerCase()) };
}

/** Requests are refused before the service reads them unless they carry its credentials. */
export function withoutAuth(spec: RequestSpec): RequestSpec {
  return withoutHeader(withoutHeader(spec, 'authorization'), 'x-api-key');
}
