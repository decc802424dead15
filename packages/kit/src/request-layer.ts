import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from './logger';
import type { Metrics } from './metrics';
import { isCorsPreflight } from './request-target';

/**
 * The kit's work on every request, done on Node's own request and response before Express
 * sees them: the request id, the access log line, the duration histogram and CORS headers.
 * The probes (GET /health, GET /metrics) are answered here too, past Express: its router and
 * middleware chain cost several times what a probe's answer does (packages/kit/README.md,
 * "Where the time goes"), and probes are what load balancers call most.
 */
export interface RequestLayer {
  /**
   * Starts a request: its id, and its log line and histogram sample when it ends. Returns the
   * headers every answer carries (X-Request-Id, CORS), as [name, value, name, value, …], for
   * the caller to send with writeHead (a probe) or set one by one (a routed request).
   */
  begin(req: IncomingMessage, res: ServerResponse): string[];
}

export interface CorsOptions {
  /** Origins whose pages may call: true for any (reflected), false for none. */
  origin: string | string[] | boolean;
  /** Response headers a page may read. */
  exposedHeaders: string[];
  /** How long a browser may keep a preflight's answer (seconds). */
  maxAge: number;
}

/** What a client may send as X-Request-Id and have echoed: anything else gets a fresh UUID. */
const GIVEN_ID = /^[\w.-]{1,128}$/;
/** Paths not worth a log line each: probes and scrapes. */
const QUIET = new Set(['/health', '/metrics']);
/** The methods a preflight may ask for (the kit's routes use no others). */
const CORS_METHODS = 'GET,HEAD,PUT,PATCH,POST,DELETE';

export function createRequestLayer(options: {
  logger: Logger;
  metrics: Metrics;
  cors: CorsOptions;
}): RequestLayer {
  const { logger, metrics, cors } = options;
  const exposed = cors.exposedHeaders.join(',');
  const maxAge = String(cors.maxAge);
  const allowed = (origin: string) =>
    cors.origin === true ||
    cors.origin === origin ||
    (Array.isArray(cors.origin) && cors.origin.includes(origin));

  /**
   * CORS (Fetch standard §3.2.5): a response to a page from an allowed origin names that
   * origin in Access-Control-Allow-Origin and lists in Access-Control-Expose-Headers what the
   * page may read; a preflight's answer also says which methods and headers the real request
   * may use and for how long to keep that. Every answer says `Vary: Origin`, since it depends
   * on the Origin header (RFC 9110 §12.5.5), so a cache never hands one origin's to another.
   */
  const corsHeaders = (req: IncomingMessage, out: string[]) => {
    out.push('Vary', 'Origin');
    const origin = req.headers.origin;
    if (typeof origin !== 'string' || cors.origin === false || !allowed(origin)) return;
    out.push('Access-Control-Allow-Origin', origin, 'Access-Control-Expose-Headers', exposed);
    if (!isCorsPreflight(req)) return;
    out.push('Access-Control-Allow-Methods', CORS_METHODS, 'Access-Control-Max-Age', maxAge);
    const asked = req.headers['access-control-request-headers'];
    if (typeof asked === 'string' && asked !== '')
      out.push('Access-Control-Allow-Headers', asked, 'Vary', 'Access-Control-Request-Headers');
  };

  return {
    begin(req, res) {
      const given = req.headers['x-request-id'];
      const id = typeof given === 'string' && GIVEN_ID.test(given) ? given : randomUUID();
      (req as IncomingMessage & { id?: string }).id = id;
      const started = performance.now();
      const url = req.url ?? '/';
      // Read now: once the client is gone its socket no longer says where it was.
      const remote = req.socket?.remoteAddress;
      res.once('close', () => {
        const ms = performance.now() - started;
        const status = res.statusCode;
        // Ended before the whole answer went out: the client went away (not in the histogram,
        // whose status would be a guess).
        const finished = res.writableFinished;
        if (finished) {
          const r = req as IncomingMessage & {
            route?: { path?: unknown };
            baseUrl?: string;
            kitRoute?: string;
          };
          // The matched pattern, never the raw path: bounded label cardinality.
          const route =
            r.kitRoute ?? (r.route?.path ? `${r.baseUrl ?? ''}${String(r.route.path)}` : 'unmatched');
          metrics.httpDuration.observe(req.method ?? 'GET', route, status, ms / 1000);
        }
        if (QUIET.has(url) && finished && status < 500) return;
        // One short line per request: headers can carry secrets and are rarely worth the bytes.
        const line = {
          req: { id, method: req.method, url, remote },
          // An answer that never started has no status (Node's default 200 would be a lie).
          res: { status: res.headersSent ? status : null },
          responseTime: Math.round(ms),
        };
        if (!finished) logger.warn(line, 'request aborted');
        else if (status >= 500) logger.error(line, 'request errored');
        else logger.info(line, 'request completed');
      });
      const headers = ['X-Request-Id', id];
      corsHeaders(req, headers);
      return headers;
    },
  };
}

/** Sets [name, value, …] on a response, adding to a header already set (Vary twice). */
export function setHeaders(res: ServerResponse, headers: string[]): void {
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!;
    const value = headers[i + 1]!;
    if (res.hasHeader(name)) res.appendHeader(name, value);
    else res.setHeader(name, value);
  }
}

/**
 * Answers GET or HEAD of exactly `path` with `body()`, or returns false (the request goes on
 * to Express). A probe's query string sends it to Express, which checks it.
 */
export function answerProbe(
  req: IncomingMessage,
  res: ServerResponse,
  probe: { path: string; contentType: string; body: () => string | Promise<string> },
  headers: string[],
  onError: (err: unknown) => void,
): boolean {
  if (req.url !== probe.path || (req.method !== 'GET' && req.method !== 'HEAD')) return false;
  (req as IncomingMessage & { kitRoute?: string }).kitRoute = probe.path;
  const send = (text: string) => {
    // One writeHead with every header: cheaper than a setHeader each, which a probe at
    // thousands a second notices.
    res.writeHead(200, [
      ...headers,
      'Content-Type',
      probe.contentType,
      'Content-Length',
      String(Buffer.byteLength(text)),
    ]);
    res.end(req.method === 'HEAD' ? undefined : text);
  };
  let text: string | Promise<string>;
  try {
    text = probe.body();
  } catch (err) {
    onError(err);
    return true;
  }
  // Answered in the tick the request came in when the body is at hand, as a bare server does.
  if (typeof text === 'string') send(text);
  else text.then(send, onError);
  return true;
}
