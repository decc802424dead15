import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { PassThrough } from 'node:stream';
import { CALLER_KEY_ID_HEADER, CALLER_SCOPES_HEADER } from '@qlab/kit';
import { type Dispatcher, Pool } from 'undici';

type DispatchController = Dispatcher.DispatchController;

/**
 * HTTP forwarding to one upstream over undici's connection pool: about twice what Node's
 * http.request manages per core here and nearly three times http-proxy (gateway/README.md,
 * "Where the time goes"). WebSocket upgrades still go through http-proxy (proxy.ts).
 *
 * RFC 9110 §7.6.1: "a proxy MUST parse the Connection header field before a message is
 * forwarded and, for each connection-option in this field, remove any header or trailer
 * field(s) from the message with the same name as the connection-option, and then remove the
 * Connection header field itself", and the hop-by-hop fields below are never forwarded.
 */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  // Node has already answered "100 Continue" to the caller (RFC 9110 §10.1.1: a proxy may
  // forward the request without the expectation once it has).
  'expect',
]);

/**
 * What the gateway itself tells a service (proxy.ts asGatewayCall, and below): a caller's
 * Connection header naming one of these must not take it off the forwarded request.
 */
const GATEWAY_SET = new Set([
  'host',
  // The gateway judged the scope on the method this names (kit effectiveMethod): dropping it
  // would let a service act on another method than the one that was allowed.
  'x-http-method-override',
  'authorization',
  CALLER_KEY_ID_HEADER,
  CALLER_SCOPES_HEADER,
  'x-forwarded-prefix',
  'x-forwarded-for',
  'x-forwarded-port',
  'x-forwarded-proto',
  'x-forwarded-host',
]);

/** The comma-separated tokens of a field, lower case, however many lines it came in. */
const tokens = (value: string | string[] | undefined) =>
  (Array.isArray(value) ? value.join(',') : (value ?? ''))
    .toLowerCase()
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);

/** The fields named in Connection, with the hop-by-hop ones: what a hop must not pass on. */
function dropped(headers: IncomingHttpHeaders, keep?: Set<string>): Set<string> {
  const given = headers.connection as string | string[] | undefined;
  if (given === undefined) return HOP_BY_HOP;
  return new Set([...HOP_BY_HOP, ...tokens(given).filter((n) => !keep?.has(n))]);
}

/** The fields of `headers` not in `skip`. */
function without(headers: IncomingHttpHeaders, skip: Set<string>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers))
    if (value !== undefined && !skip.has(name)) out[name] = value;
  return out;
}

/** A Content-Length that is one decimal number, or undefined. */
function lengthOf(headers: IncomingHttpHeaders): number | undefined {
  const length = headers['content-length'];
  return typeof length === 'string' && /^\d+$/.test(length) ? Number(length) : undefined;
}

/**
 * What a caller that does not read may leave in the gateway of an answer that cannot be paused
 * (below), per answer and for all of them together; past either, the caller is cut.
 */
const UNPAUSABLE_BUFFER = 8 * 1024 * 1024;
const UNPAUSABLE_BUDGET = 64 * 1024 * 1024;
/** The answers being buffered that way now (their bytes waiting: res.writableLength). */
const unpausable = new Set<ServerResponse>();
const unpausableBytes = () => {
  let n = 0;
  for (const r of unpausable) n += r.writableLength;
  return n;
};
const LENGTH_MISMATCH = 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH';

/**
 * Whether undici may pause its parser on this answer. undici 7 asserts (and so ends the
 * process) when a connection ends while its parser is paused and llhttp did not expect it to
 * stay open (nodejs/undici#5360, fixed in undici 8, which needs Node 22). So only answers that
 * say they keep the connection, in the one way every Node service does, are paused: an explicit
 * `Connection: keep-alive`, no `close` in Connection or Proxy-Connection, and a body framed by a
 * Content-Length or by `chunked` as its only transfer coding (RFC 9112 §6.3). HTTP/1.0 answers
 * without keep-alive, EOF-delimited bodies and odd codings are buffered instead.
 */
function pausable(headers: IncomingHttpHeaders): boolean {
  const connection = tokens(headers.connection as string | string[] | undefined);
  const proxyConnection = tokens(headers['proxy-connection'] as string | string[] | undefined);
  if (!connection.includes('keep-alive') || connection.includes('close') || proxyConnection.includes('close'))
    return false;
  const te = headers['transfer-encoding'] as string | string[] | undefined;
  if (te !== undefined) {
    const codings = tokens(te);
    return codings.length === 1 && codings[0] === 'chunked';
  }
  return lengthOf(headers) !== undefined;
}

export interface ForwardFailure {
  /** The upstream did not answer (or went quiet) within the timeout. */
  timedOut: boolean;
  /** The upstream's answer had started: it was cut, and the caller's answer with it. */
  afterHeaders: boolean;
  error: Error & { code?: string };
}

export class Forwarder {
  private readonly pool: Pool;
  private readonly basePath: string;
  private readonly host: string;

  constructor(url: string) {
    const u = new URL(url);
    this.pool = new Pool(u.origin, { connections: 256 });
    this.basePath = u.pathname.replace(/\/$/, '');
    this.host = u.host;
  }

  /**
   * Sends `req` to `path` on the upstream and streams the answer into `res`, both ways with
   * backpressure. `timeoutMs` bounds the wait for the answer's headers and each silence in its
   * body (undefined: none, for streaming mounts). `onFailure` is called once if it fails.
   */
  forward(
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    timeoutMs: number | undefined,
    onFailure: (f: ForwardFailure) => void,
  ): void {
    // A caller that left while its key was checked is not sent on: nothing would read the
    // answer, and its body would never end (found by the review: held connections, then a crash).
    if (req.destroyed || res.destroyed) return;
    const headers = without(req.headers, dropped(req.headers, GATEWAY_SET));
    // What http-proxy's xfwd did, which the services build their public URLs from.
    const port = /:(\d+)$/.exec(req.headers.host ?? '')?.[1] ?? '80';
    const append = (name: string, value: string) => {
      const had = req.headers[name];
      headers[name] = typeof had === 'string' && had !== '' ? `${had},${value}` : value;
    };
    append('x-forwarded-for', req.socket.remoteAddress ?? '');
    append('x-forwarded-port', port);
    append('x-forwarded-proto', 'http');
    headers['x-forwarded-host'] = req.headers['x-forwarded-host'] ?? req.headers.host ?? '';
    headers.host = this.host;

    const hasBody =
      (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0') ||
      req.headers['transfer-encoding'] !== undefined;
    // The body goes through a pass-through: on a failure undici destroys the stream it was
    // given, and the caller's socket must outlive that to read the service's early answer (a
    // 413) and keep its connection (app.ts drops what it still sends).
    let body: PassThrough | null = null;
    if (hasBody) {
      body = new PassThrough({ highWaterMark: 64 * 1024 });
      req.pipe(body);
    }
    let settled = false;
    /** The answer's status once it started (0 before). */
    let status = 0;
    let canPause = false;
    let expected: number | undefined;
    let received = 0;
    let controller: DispatchController | undefined;
    const fail = (error: Error & { code?: string }) => {
      if (settled) return;
      settled = true;
      if (body) req.unpipe(body);
      const code = error.code;
      onFailure({
        timedOut: code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT',
        afterHeaders: status > 0 || res.headersSent,
        error,
      });
    };
    // The caller went away: stop the upstream request (its answer has nowhere to go), also
    // one still waiting for a pooled connection.
    let gone = false;
    const onClose = () => {
      if (res.writableFinished || settled) return;
      gone = true;
      settled = true;
      body?.destroy();
      // undici's abort destroys the service connection, paused or not.
      if (controller && !controller.aborted) controller.abort(new Error('the caller closed the connection'));
    };
    // A response queued behind another on a pipelined connection emits no close when the
    // caller leaves; its socket does (found by the second review: held connections).
    const socket = req.socket;
    res.once('close', onClose);
    socket.once('close', onClose);
    const done = () => {
      res.off('close', onClose);
      socket.off('close', onClose);
      res.off('drain', onDrain);
      unpausable.delete(res);
    };
    const onDrain = () => controller?.resume();
    res.on('drain', onDrain);
    // dispatch with a handler: undici's lowest level, about 1.5× its stream() here.
    try {
      this.pool.dispatch(
        {
          path: `${this.basePath}${path}`,
          method: (req.method ?? 'GET') as Dispatcher.HttpMethod,
          headers,
          body,
          headersTimeout: timeoutMs ?? 0,
          bodyTimeout: timeoutMs ?? 0,
        },
        {
          onRequestStart(c) {
            controller = c;
            if (gone) c.abort(new Error('the caller closed the connection'));
          },
          onResponseStart(_c, statusCode, upstream) {
            // 1xx answers are the hop's own (Node already said 100 Continue to the caller).
            if (statusCode < 200) return;
            status = statusCode;
            canPause = pausable(upstream);
            expected = lengthOf(upstream);
            res.writeHead(statusCode, without(upstream, dropped(upstream)));
          },
          onResponseData(c, chunk) {
            received += chunk.length;
            if (res.destroyed) return void c.abort(new Error('the caller closed the connection'));
            if (res.write(chunk)) return;
            // Backpressure: the service waits while the caller does not read, on the answers
            // undici can safely pause (pausable); the others are buffered, within bounds.
            if (canPause) return void c.pause();
            unpausable.add(res);
            if (res.writableLength > UNPAUSABLE_BUFFER || unpausableBytes() > UNPAUSABLE_BUDGET)
              c.abort(new Error('the caller does not read an answer that cannot be held back'));
          },
          onResponseEnd() {
            settled = true;
            res.end();
            // Buffered bytes still count against the budget until they are written.
            if (unpausable.has(res)) res.once('close', done);
            else done();
          },
          onResponseError(_c, error) {
            done();
            // RFC 9110 §8.6: a 304 (and a HEAD's answer) may carry the Content-Length the full
            // answer would have, with no body; undici counts that as a short body. It is whole.
            const bodiless = status === 304 || status === 204 || req.method === 'HEAD';
            // A whole answer after which the service closed its connection while the parser was
            // paused (its keep-alive timer, a restart): it is complete, not cut.
            const whole = status > 0 && expected !== undefined && received === expected;
            if (
              whole ||
              (bodiless && received === 0 && (error as { code?: string }).code === LENGTH_MISMATCH)
            ) {
              settled = true;
              res.end();
              return;
            }
            fail(error);
          },
        },
      );
    } catch (err) {
      // What undici refuses outright (a header value it will not send): the caller's fault.
      done();
      fail(err as Error);
    }
  }

  /** Called once the server has drained its requests: whatever is still open is cut. */
  close(): Promise<void> {
    return this.pool.destroy();
  }
}
