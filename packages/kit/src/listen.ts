import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Express } from 'express';
import { problem, titleFor } from './errors';

export interface ListenOptions {
  port: number;
  host?: string;
  /**
   * Whole-request limit in ms. Node's default (300 s) cuts off slow large uploads, so the kit
   * disables it and relies on the idle timeout below instead. 0 = none.
   */
  requestTimeoutMs?: number;
  /** Close a socket that sends or receives nothing for this long. Default 120 s. */
  idleTimeoutMs?: number;
  /** How long close() waits for in-flight requests before cutting connections. Default 10 s. */
  graceMs?: number;
}

export interface Listening {
  url: string;
  port: number;
  server: Server;
  /** Stops accepting, lets in-flight requests finish (up to graceMs), then closes what is left. */
  close(): Promise<void>;
}

/**
 * A request Node's HTTP parser refuses never reaches the app; without this it gets a bare
 * "400 Bad Request". Answer it as every other refusal: problem+json, then close.
 */
function answerUnparsable(err: NodeJS.ErrnoException, socket: Duplex): void {
  // A body cut off mid-request (HPE_INVALID_EOF_STATE) belongs to a request the app is
  // already handling: it answers or cleans up; a second answer here would race it.
  const inFlight = (socket as Duplex & { _httpMessage?: unknown })._httpMessage !== undefined;
  if (err.code === 'ECONNRESET' || !socket.writable || inFlight) {
    socket.destroy();
    return;
  }
  const status =
    err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
  const doc = problem(
    status,
    status === 431 ? 'HEADERS_TOO_LARGE' : status === 408 ? 'REQUEST_TIMEOUT' : 'MALFORMED_REQUEST',
    status === 431
      ? 'the request line and headers are too large'
      : `the request is not valid HTTP/1.1 (${err.code ?? 'unparsable'})`,
  );
  const body = JSON.stringify(doc);
  socket.end(
    `HTTP/1.1 ${status} ${titleFor(status)}\r\nContent-Type: application/problem+json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

/** Serves an Express app, or any request listener (the gateway's, which puts a fast path before its app). */
export function listen(app: Express | RequestListener, options: ListenOptions): Promise<Listening> {
  const host = options.host ?? '127.0.0.1';
  return new Promise((resolve, reject) => {
    const server = createServer(app as RequestListener);
    server.listen(options.port, host);
    server.requestTimeout = options.requestTimeoutMs ?? 0;
    server.timeout = options.idleTimeoutMs ?? 120_000;
    // Longer than a proxy's idle keep-alive, so the gateway never reuses a socket we just closed.
    server.keepAliveTimeout = 65_000;
    server.headersTimeout = 66_000;
    server.on('clientError', answerUnparsable);
    server.once('error', reject);
    server.once('listening', () => {
      server.off('error', reject);
      const address = server.address() as AddressInfo;
      const shownHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
      const url = `http://${shownHost.includes(':') ? `[${shownHost}]` : shownHost}:${address.port}`;
      let closing: Promise<void> | undefined;
      resolve({
        url,
        port: address.port,
        server,
        close() {
          closing ??= new Promise<void>((done) => {
            const force = setTimeout(() => server.closeAllConnections(), options.graceMs ?? 10_000);
            force.unref();
            server.close(() => {
              clearTimeout(force);
              done();
            });
            server.closeIdleConnections();
          });
          return closing;
        },
      });
    });
  });
}
