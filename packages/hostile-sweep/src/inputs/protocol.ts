import { toRaw } from '../cases';
import { type Draft, either, type GenContext, refuse, seedFor, someOf } from '../generators';
import type { Operation } from '../openapi';
import { plausibleRequest } from '../plausible';
import type { RawRequest } from '../raw-http';

type Mangle = (r: RawRequest, port: number) => RawRequest;

const bytes = (...parts: (string | number[])[]) =>
  Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : Buffer.from(p))));

/** Malformed request lines and framing, which fetch cannot send: one target each, not per route. */
const MANGLES: { label: string; mangle: Mangle; valid?: boolean; closeOk?: boolean }[] = [
  {
    label: 'invalid UTF-8 bytes in the path',
    mangle: (r) => ({ ...r, target: bytes(String(r.target), [0xff, 0xfe]) }),
  },
  {
    label: 'invalid UTF-8 bytes in the query',
    mangle: (r) => ({ ...r, target: bytes(String(r.target), '?q=', [0xc0, 0xaf]) }),
  },
  {
    label: 'NUL byte in the target',
    mangle: (r) => ({ ...r, target: bytes(String(r.target), [0x00], 'x') }),
  },
  { label: 'space inside the target', mangle: (r) => ({ ...r, target: `${r.target} x` }) },
  { label: 'lower-case method', mangle: (r) => ({ ...r, method: r.method.toLowerCase() }) },
  { label: 'unknown method', mangle: (r) => ({ ...r, method: 'HOSTILE' }) },
  { label: 'URL of 20 kB', mangle: (r) => ({ ...r, target: `${r.target}?pad=${'u'.repeat(20_000)}` }) },
  {
    label: 'bare CR inside a header value',
    mangle: (r) => ({ ...r, headers: [...r.headers, ['X-Broken', Buffer.from('a\rb')]] }),
  },
  {
    label: 'Content-Length and Transfer-Encoding both',
    mangle: (r) => ({
      ...r,
      headers: [...r.headers, ['Content-Length', '5'], ['Transfer-Encoding', 'chunked']],
      body: Buffer.from('0\r\n\r\n'),
    }),
  },
  {
    label: 'Content-Length not a number',
    mangle: (r) => ({ ...r, headers: [...r.headers, ['Content-Length', 'abc']] }),
  },
  {
    label: 'two different Content-Length values',
    mangle: (r) => ({
      ...r,
      headers: [...r.headers, ['Content-Length', '1'], ['Content-Length', '2']],
      body: Buffer.from('xy'),
    }),
  },
  { label: 'OPTIONS *', mangle: (r) => ({ ...r, method: 'OPTIONS', target: '*' }), valid: true },
  {
    label: 'HTTP/1.0 style, no Host',
    mangle: (r) => ({
      ...r,
      headers: [['Host', ''], ...r.headers.filter(([n]) => n.toLowerCase() !== 'host')],
    }),
    valid: true,
  },
  {
    label: 'CONNECT to another host',
    mangle: (r) => ({ ...r, method: 'CONNECT', target: 'hostile.invalid:443' }),
    closeOk: true,
  },
];

/** Request-line and framing garbage against one route of a target (the parser is per server, not per route). */
export function protocolDrafts(op: Operation, ctx: GenContext): Draft[] {
  const port = ctx.portOf(op);
  const base = toRaw(plausibleRequest(op, ctx.fx).spec);
  return someOf(MANGLES, 8 + 2 * ctx.scale, seedFor(ctx.seed, op.key, 'protocol')).map((m) => ({
    op,
    cls: 'request-line',
    label: m.label,
    request: m.mangle(base, port),
    expect: m.valid ? either() : refuse({ closeOk: m.closeOk }),
  }));
}
