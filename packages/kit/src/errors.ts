import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { ErrorRequestHandler, RequestHandler } from 'express';
import type { Logger } from './logger';

export interface ProblemExtras {
  /** Extra members of the problem document (RFC 9457 extension members). */
  [key: string]: unknown;
}

/**
 * An error that becomes an application/problem+json response. `code` is stable and
 * machine-readable; `detail` is safe to show to the client.
 */
export class AppError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly detail: string,
    readonly extras: ProblemExtras = {},
    options?: { cause?: unknown },
  ) {
    super(detail, options);
    this.name = 'AppError';
  }
}

export const badRequest = (detail: string, extras?: ProblemExtras) =>
  new AppError(400, 'BAD_REQUEST', detail, extras);
export const unauthorized = (detail = 'missing or invalid credentials') =>
  new AppError(401, 'UNAUTHORIZED', detail);
export const forbidden = (detail: string) => new AppError(403, 'FORBIDDEN', detail);
export const notFound = (detail: string) => new AppError(404, 'NOT_FOUND', detail);
export const conflict = (detail: string) => new AppError(409, 'CONFLICT', detail);
export const payloadTooLarge = (detail: string, extras?: ProblemExtras) =>
  new AppError(413, 'PAYLOAD_TOO_LARGE', detail, extras);
export const unsupportedMediaType = (detail: string) => new AppError(415, 'UNSUPPORTED_MEDIA_TYPE', detail);
export const rangeNotSatisfiable = (detail: string) => new AppError(416, 'RANGE_NOT_SATISFIABLE', detail);
export const unprocessable = (detail: string, extras?: ProblemExtras) =>
  new AppError(422, 'UNPROCESSABLE', detail, extras);
export const serviceUnavailable = (detail: string) => new AppError(503, 'SERVICE_UNAVAILABLE', detail);

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  409: 'Conflict',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  416: 'Range Not Satisfiable',
  422: 'Unprocessable Content',
  423: 'Locked',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
  507: 'Insufficient Storage',
};

export function titleFor(status: number): string {
  return TITLES[status] ?? 'Error';
}

/** Normalises anything thrown into an Error (graphile's coerceError). */
export function coerceError(err: unknown): Error {
  if (err instanceof Error) return err;
  // Errors from another realm (vm contexts, some native addons) fail instanceof but are errors.
  if (typeof err === 'object' && err !== null && typeof (err as Error).message === 'string') {
    return Object.assign(new Error((err as Error).message, { cause: err }), { stack: (err as Error).stack });
  }
  return new Error(typeof err === 'string' ? err : JSON.stringify(err));
}

export interface ProblemDocument {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  requestId?: string;
  [key: string]: unknown;
}

export function problem(
  status: number,
  code: string,
  detail: string,
  extras: ProblemExtras = {},
): ProblemDocument {
  return {
    type: `https://qlab.dev/problems/${code.toLowerCase().replace(/_/g, '-')}`,
    title: titleFor(status),
    status,
    detail,
    code,
    ...extras,
  };
}

/** Maps errors thrown by body parsers and other middleware onto problem documents. */
function fromExpressError(err: Error & { status?: number; type?: string; expose?: boolean }) {
  if (err.type === 'entity.parse.failed')
    return new AppError(400, 'MALFORMED_JSON', 'request body is not valid JSON');
  if (err.type === 'entity.too.large')
    return new AppError(413, 'PAYLOAD_TOO_LARGE', 'request body is too large');
  if (err.type === 'encoding.unsupported' || err.type === 'charset.unsupported')
    return new AppError(415, 'UNSUPPORTED_MEDIA_TYPE', err.message);
  if (typeof err.status === 'number' && err.status >= 400 && err.status < 500 && err.expose !== false)
    return new AppError(err.status, 'BAD_REQUEST', err.message);
  return undefined;
}

/** The single error middleware: writes application/problem+json, logs 5xx with the stack. */
export function problemErrorHandler(
  logger: Logger,
  extraMembers?: (doc: ProblemDocument) => ProblemExtras,
): ErrorRequestHandler {
  return (thrown, req, res, _next) => {
    const err = coerceError(thrown);
    const app = err instanceof AppError ? err : fromExpressError(err);
    const requestId = String((req as { id?: unknown }).id ?? '');
    if (res.headersSent) {
      // Too late for a problem document: cut the connection so the client sees a failure.
      logger.warn({ err, requestId }, 'error after response started');
      res.destroy();
      return;
    }
    const outage = !app && isStoreOutage(err);
    const full = !app && isDiskFull(err);
    const base = app
      ? problem(app.status, app.code, app.detail, { ...app.extras, requestId })
      : full
        ? problem(507, 'INSUFFICIENT_STORAGE', 'the server has no space left for this: try again later', {
            requestId,
          })
        : outage
          ? problem(
              503,
              'STORE_UNAVAILABLE',
              'a database or store this service needs is unreachable: try again',
              {
                requestId,
              },
            )
          : problem(500, 'INTERNAL', 'internal server error', { requestId });
    const doc = extraMembers ? { ...base, ...extraMembers(base) } : base;
    if (full) logger.error({ err, requestId }, 'disk full: answered 507');
    else if (outage) {
      logger.warn({ err, requestId }, 'store unreachable: answered 503');
      if (!res.headersSent) res.setHeader('Retry-After', '5');
    } else if (!app) logger.error({ err, requestId }, 'unhandled error');
    else if (app.status >= 500) logger.error({ err, requestId }, app.detail);
    else logger.debug({ code: app.code, requestId }, app.detail);
    afterBody(req, () => {
      // A body a stream pipeline destroyed cannot be read on: close after the answer instead.
      if (req.destroyed && !req.complete && !res.headersSent) res.setHeader('Connection', 'close');
      if (!res.headersSent && !res.destroyed) sendProblem(res, doc);
    });
  };
}

export function sendProblem(res: import('express').Response, doc: ProblemDocument): void {
  res.status(doc.status).type('application/problem+json').send(JSON.stringify(doc));
}

/**
 * A problem on a plain Node response, for code that answers before (or without) Express. A
 * response already under way can only be cut off.
 */
export function sendRawProblem(
  res: ServerResponse,
  doc: ProblemDocument,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(doc.status, { ...headers, 'content-type': 'application/problem+json' });
  res.end(JSON.stringify(doc));
}

/** What of a refused body is read and dropped after the answer, at most, before the connection is cut. */
const LINGER_BYTES = 64 * 1024 * 1024;
const LINGER_MS = 2000;

/**
 * Reads and drops the rest of a request body after its answer went out, then lets the
 * connection go on (keep-alive) or, past LINGER_BYTES or LINGER_MS, cuts it. A client (or a
 * proxy such as the gateway) still sending when the server answers must be able to read the
 * answer: closing with its bytes unread sends a TCP reset that can swallow the answer, and a
 * proxy in front then reports 502 instead of the service's 413. nginx's lingering close is the
 * model; the bounds keep an endless body from holding the connection.
 */
export function lingerOnBody(
  req: import('node:http').IncomingMessage,
  limits: { bytes: number; ms: number } = { bytes: LINGER_BYTES, ms: LINGER_MS },
): void {
  if (req.complete || req.destroyed || req.readableEnded) return;
  readFor(req, limits, (ended) => {
    if (!ended) req.socket?.destroy();
  });
}

/**
 * Reads and drops a body until it ends (then `settled(true)`) or `limits` is passed, in bytes
 * or time (then `settled(false)`), whichever comes first; once.
 */
function readFor(
  req: import('node:http').IncomingMessage,
  limits: { bytes: number; ms: number },
  settled: (ended: boolean) => void,
): void {
  let seen = 0;
  let done = false;
  const finish = (ended: boolean) => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    req.off('data', count);
    settled(ended);
  };
  const count = (chunk: Buffer) => {
    seen += chunk.length;
    if (seen > limits.bytes) finish(false);
  };
  const timer = setTimeout(() => finish(false), limits.ms);
  timer.unref();
  req.on('data', count);
  req.once('end', () => finish(true));
  req.once('close', () => finish(req.complete));
  req.once('error', () => finish(false));
  req.resume();
}

/** A refused body declared this small (or chunked) is read to its end before the answer. */
const READ_FIRST_BYTES = 4 * 1024 * 1024;

/**
 * Answers a refused request and drops the rest of its body. A small one (up to 4 MiB, or of
 * unknown length up to that) is read to its end first, within the linger bounds, so the answer
 * never races the caller's last bytes; a larger one is answered at once and dropped after
 * (lingerOnBody), so a caller sending 200 MiB learns of the 413 at once. Either way the
 * connection stays good for the next request when the body ends within bounds.
 */
export function afterBody(
  req: import('node:http').IncomingMessage,
  answer: () => void,
  limits?: { bytes: number; ms: number },
): void {
  const declared = Number(req.headers['content-length'] ?? Number.NaN);
  if (req.complete || req.destroyed || req.readableEnded || declared > READ_FIRST_BYTES) {
    answer();
    lingerOnBody(req, limits);
    return;
  }
  readFor(req, { bytes: READ_FIRST_BYTES, ms: limits?.ms ?? LINGER_MS }, () => {
    answer();
    lingerOnBody(req, limits);
  });
}

/** Refuses a WebSocket upgrade with a problem document (the socket has no Express response). */
export function refuseUpgrade(socket: Duplex, doc: ProblemDocument): void {
  const body = JSON.stringify(doc);
  socket.on('error', () => undefined);
  // Closed once written: a refused client must not keep a socket open on us.
  socket.end(
    `HTTP/1.1 ${doc.status} ${titleFor(doc.status)}\r\nContent-Type: application/problem+json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    () => socket.destroy(),
  );
}

/** 404 for any route no router claimed. */
export const notFoundHandler: RequestHandler = (req, _res, next) => {
  next(notFound(`no route for ${req.method} ${req.path}`));
};

/** Socket errors and PostgreSQL's "admin shutdown", "cannot connect now" and connection classes. */
const OUTAGE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  // A container's name briefly unresolvable while it restarts (compose's "postgres").
  'EAI_AGAIN',
  'SQLITE_BUSY',
  '53300',
  '57P01',
  '57P02',
  '57P03',
  '08000',
  '08001',
  '08003',
  '08004',
  '08006',
]);

/**
 * A request that failed because the database (or another store) is down or restarting, not
 * because of a bug: the client should retry, so it is a 503 with Retry-After, not a 500.
 */
export function isStoreOutage(err: unknown): boolean {
  // A call to another service that failed is not a store of ours being down: often a wrong URL.
  if (err instanceof TypeError && err.message === 'fetch failed') return false;
  return causes(err).some(
    (e) =>
      (typeof e.code === 'string' && OUTAGE_CODES.has(e.code)) ||
      (typeof e.message === 'string' && OUTAGE_MESSAGE.test(e.message)),
  );
}

const OUTAGE_MESSAGE =
  /Connection terminated unexpectedly|Client has encountered a connection error|terminating connection due to administrator command|the database system is (starting up|shutting down|in recovery mode)/;

/** 53100: PostgreSQL's disk_full; SQLITE_FULL: the database file's disk. */
const DISK_FULL_CODES = new Set(['ENOSPC', 'EDQUOT', '53100', 'SQLITE_FULL']);

/** No space left (ENOSPC, EDQUOT, PostgreSQL's 53100, SQLITE_FULL): RFC 4918's 507, not a bug. */
export function isDiskFull(err: unknown): boolean {
  return causes(err).some((e) => typeof e.code === 'string' && DISK_FULL_CODES.has(e.code));
}

/** An error and the causes it wraps (drivers and knex nest the socket's error), four deep at most. */
function causes(err: unknown): { code?: unknown; message?: unknown }[] {
  const chain: { code?: unknown; message?: unknown; cause?: unknown }[] = [];
  for (
    let e = err as (typeof chain)[number] | undefined;
    e && typeof e === 'object' && chain.length < 4;
    e = e.cause as typeof e
  )
    chain.push(e);
  return chain;
}
