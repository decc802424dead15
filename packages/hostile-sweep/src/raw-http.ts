import net from 'node:net';

/**
 * One HTTP/1.1 request written byte for byte on a fresh socket. fetch cannot send what this
 * sweep needs (absolute-form targets, dot segments kept as sent, invalid UTF-8 in the request
 * line or headers, a Content-Length that lies, a body cut off by a FIN), so every request of
 * the sweep goes through here.
 */
export interface RawRequest {
  method: string;
  /** The request-target exactly as sent: origin-form, absolute-form, or raw bytes. */
  target: string | Buffer;
  /** Sent in this order, unchanged; Host and Connection: close are added when absent. */
  headers: [string, string | Buffer][];
  body?: Buffer;
  /** Send the body as chunked transfer coding (the caller adds Transfer-Encoding). */
  chunked?: boolean;
  /** Send only this many body bytes, then half-close the socket: a truncated body. */
  truncateAt?: number;
}

export type RawResult =
  | {
      kind: 'answer';
      status: number;
      headers: Record<string, string>;
      body: Buffer;
      ms: number;
      /** The connection closed before the whole body arrived. */
      incomplete: boolean;
    }
  /** The server closed (or reset) the connection without a status line. */
  | { kind: 'closed'; ms: number; error?: string }
  /** Nothing complete within the deadline. */
  | { kind: 'timeout'; ms: number; partial: string }
  /** Nothing listens: the service is down. */
  | { kind: 'refused'; ms: number };

export const ANSWER_DEADLINE_MS = 10_000;

const CRLF = Buffer.from('\r\n');

function hasHeader(headers: [string, string | Buffer][], name: string): boolean {
  return headers.some(([n]) => n.toLowerCase() === name);
}

/** The bytes of the request head (request line and headers). */
export function requestHead(req: RawRequest, host: string): Buffer {
  const parts: Buffer[] = [
    Buffer.from(`${req.method} `),
    Buffer.from(req.target),
    Buffer.from(' HTTP/1.1\r\n'),
  ];
  const headers: [string, string | Buffer][] = [...req.headers];
  if (!hasHeader(headers, 'host')) headers.unshift(['Host', host]);
  if (!hasHeader(headers, 'connection')) headers.push(['Connection', 'close']);
  for (const [name, value] of headers) parts.push(Buffer.from(`${name}: `), Buffer.from(value), CRLF);
  parts.push(CRLF);
  return Buffer.concat(parts);
}

function chunkedBody(body: Buffer): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < body.length; i += 16_384) {
    const piece = body.subarray(i, i + 16_384);
    parts.push(Buffer.from(`${piece.length.toString(16)}\r\n`), piece, CRLF);
  }
  parts.push(Buffer.from('0\r\n\r\n'));
  return Buffer.concat(parts);
}

interface ParsedHead {
  status: number;
  headers: Record<string, string>;
  bodyStart: number;
}

function parseHead(buf: Buffer): ParsedHead | undefined {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '');
  if (!m) return { status: 0, headers: {}, bodyStart: end + 4 };
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const i = line.indexOf(':');
    if (i <= 0) continue;
    const name = line.slice(0, i).trim().toLowerCase();
    const value = line.slice(i + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  return { status: Number(m[1]), headers, bodyStart: end + 4 };
}

/** Decodes a chunked body; undefined while it is still incomplete. */
function dechunk(buf: Buffer): Buffer | undefined {
  const out: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = buf.indexOf('\r\n', at);
    if (eol < 0) return undefined;
    const size = Number.parseInt(buf.subarray(at, eol).toString('latin1').split(';')[0]!, 16);
    if (!Number.isFinite(size)) return Buffer.concat(out);
    if (size === 0) return Buffer.concat(out);
    if (buf.length < eol + 2 + size + 2) return undefined;
    out.push(buf.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
}

/** Sends `req` to 127.0.0.1:`port` and waits for a whole answer, a close, or the deadline. */
export function send(port: number, req: RawRequest, deadlineMs = ANSWER_DEADLINE_MS): Promise<RawResult> {
  const started = Date.now();
  const elapsed = () => Date.now() - started;
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let received = Buffer.alloc(0);
    let settled = false;
    let lastError: string | undefined;
    const finish = (result: RawResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(
      () => finish({ kind: 'timeout', ms: elapsed(), partial: received.toString('latin1').slice(0, 300) }),
      deadlineMs,
    );

    /** A complete answer in `received`, skipping interim 1xx answers (but not 101). */
    const complete = (closed: boolean): RawResult | undefined => {
      let buf = received;
      for (;;) {
        const head = parseHead(buf);
        if (!head) return undefined;
        if (head.status === 0) return { kind: 'closed', ms: elapsed(), error: 'not an HTTP answer' };
        if (head.status >= 100 && head.status < 200 && head.status !== 101) {
          buf = buf.subarray(head.bodyStart);
          continue;
        }
        const rest = buf.subarray(head.bodyStart);
        const answer = (body: Buffer, incomplete: boolean): RawResult => ({
          kind: 'answer',
          status: head.status,
          headers: head.headers,
          body,
          ms: elapsed(),
          incomplete,
        });
        const bodyless =
          req.method === 'HEAD' || head.status === 101 || head.status === 204 || head.status === 304;
        if (bodyless) return answer(Buffer.alloc(0), false);
        if (/chunked/i.test(head.headers['transfer-encoding'] ?? '')) {
          const body = dechunk(rest);
          if (body) return answer(body, false);
          return closed ? answer(rest, true) : undefined;
        }
        const length = head.headers['content-length'];
        if (length !== undefined) {
          const n = Number(length);
          if (rest.length >= n) return answer(rest.subarray(0, n), false);
          return closed ? answer(rest, true) : undefined;
        }
        return closed ? answer(rest, false) : undefined;
      }
    };

    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const done = complete(false);
      if (done) finish(done);
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNREFUSED') return finish({ kind: 'refused', ms: elapsed() });
      // EPIPE / ECONNRESET while we still write: the server refused early; its answer may be here.
      lastError = err.code ?? err.message;
    });
    socket.on('close', () => {
      const done = complete(true);
      finish(done ?? { kind: 'closed', ms: elapsed(), error: lastError });
    });
    socket.on('connect', () => {
      socket.write(requestHead(req, `127.0.0.1:${port}`));
      const body = req.body;
      if (body === undefined) return;
      if (req.truncateAt !== undefined) {
        socket.write(body.subarray(0, req.truncateAt));
        socket.end();
        return;
      }
      socket.write(req.chunked ? chunkedBody(body) : body);
    });
  });
}

/** The request as text for a report: control and non-ASCII bytes escaped, the body cut short. */
export function describeRequest(req: RawRequest, bodyChars = 300): string {
  const esc = (v: string | Buffer) =>
    (typeof v === 'string' ? Buffer.from(v) : v)
      .toString('latin1')
      .replace(/[^\x20-\x7e]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  const lines = [`${req.method} ${esc(req.target)} HTTP/1.1`];
  for (const [n, v] of req.headers) lines.push(`${n}: ${esc(v).slice(0, 200)}`);
  const body = req.body;
  if (body) {
    const shown = esc(body.subarray(0, bodyChars));
    const extra = [
      body.length > bodyChars ? `${body.length} bytes in all` : '',
      req.chunked ? 'sent chunked' : '',
      req.truncateAt !== undefined ? `only ${req.truncateAt} bytes sent, then FIN` : '',
    ]
      .filter(Boolean)
      .join(', ');
    lines.push('', shown + (extra ? `  [${extra}]` : ''));
  }
  return lines.join('\n');
}
