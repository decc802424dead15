import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { problem, sendRawProblem } from '@qlab/kit';
import { createProxyMiddleware, type RequestHandler } from 'http-proxy-middleware';
import type { Upstream, UpstreamId } from './config';

/** Public mount → service, and how the rest of the path maps (see ARCHITECTURE.md, gateway contract). */
export interface Mount {
  prefix: string;
  service: UpstreamId;
  /** The service path for the part after `prefix`. */
  rewrite: (rest: string) => string;
  /** Bodies and downloads may take as long as they take: no overall deadline. */
  streaming?: boolean;
}

export const MOUNTS: Mount[] = [
  { prefix: '/api/store', service: 'calibration-store', rewrite: (r) => r, streaming: true },
  { prefix: '/api/uploads', service: 'chunked-upload', rewrite: (r) => r, streaming: true },
  { prefix: '/api/v1', service: 'quantum-tracker', rewrite: (r) => `/api/v1${r}` },
  {
    prefix: '/api/jobs',
    service: 'job-worker',
    rewrite: (r) => `/jobs${r === '/' ? '' : r}`,
    streaming: true,
  },
  ...(['test', 'generator', 'benchmark'] as const).map((d) => ({
    prefix: `/api/db/${d}`,
    service: `analytics-${d}` as UpstreamId,
    rewrite: (r: string) => `/api/${d}/db${r}`,
    streaming: true,
  })),
];

/** Keep-alive to each upstream (hpm 3 would open a connection per request otherwise). */
function agentFor(): http.Agent {
  return new http.Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 64, keepAliveMsecs: 1000 });
}

/** A request the gateway has authenticated: who it is, and whether the key came as a bearer token. */
export type ProxiedRequest = IncomingMessage & { keyId?: string; keyFromBearer?: boolean };

/** The caller's gateway key stays here; the service gets its own token, when it has one. */
function useServiceToken(proxyReq: http.ClientRequest, upstream: Upstream): boolean {
  proxyReq.removeHeader('x-api-key');
  if (upstream.token) proxyReq.setHeader('authorization', `Bearer ${upstream.token}`);
  return Boolean(upstream.token);
}

function proxyFailure(res: ServerResponse | Socket, status: 502 | 504, detail: string): void {
  if ('setHeader' in res)
    sendRawProblem(res, problem(status, status === 504 ? 'UPSTREAM_TIMEOUT' : 'UPSTREAM_DOWN', detail));
  else res.destroy();
}

/**
 * One proxy per mount. Bodies stream through untouched (no parser runs before these), the
 * caller's key is replaced by the service's own token, X-Forwarded-* and X-Forwarded-Prefix
 * tell the service its public address, and the proxy's own failures are problem+json:
 * 502 when the service is down, 504 when it is too slow. The service's own errors pass through.
 */
export function createMountProxy(m: Mount, upstream: Upstream, timeoutMs: number): RequestHandler {
  return createProxyMiddleware<IncomingMessage, ServerResponse>({
    target: upstream.url,
    changeOrigin: true,
    xfwd: true,
    agent: agentFor(),
    proxyTimeout: m.streaming ? undefined : timeoutMs,
    ws: m.service === 'quantum-tracker',
    pathRewrite: (path) => m.rewrite(path),
    on: {
      proxyReq: (proxyReq, req) => {
        if (!useServiceToken(proxyReq, upstream) && (req as ProxiedRequest).keyFromBearer)
          proxyReq.removeHeader('authorization');
        proxyReq.setHeader('x-forwarded-prefix', m.prefix);
        const key = (req as ProxiedRequest).keyId;
        if (key) proxyReq.setHeader('x-consumer-id', key);
      },
      proxyReqWs: (proxyReq) => {
        useServiceToken(proxyReq, upstream);
      },
      error: (err, _req, res) => {
        const code = (err as NodeJS.ErrnoException).code;
        const slow = code === 'ECONNRESET' || code === 'ETIMEDOUT' || code === 'ESOCKETTIMEDOUT';
        proxyFailure(
          res,
          slow ? 504 : 502,
          slow
            ? `${upstream.id} did not answer in time`
            : `${upstream.id} is unreachable (${code ?? err.message})`,
        );
      },
    },
  });
}
