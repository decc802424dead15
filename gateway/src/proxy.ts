import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { CALLER_KEY_ID_HEADER, CALLER_SCOPES_HEADER, lingerOnBody, problem, sendRawProblem } from '@qlab/kit';
import { MOUNTED, type Mount as RegistryMount, toServicePath } from '@qlab/registry';
import { createProxyMiddleware } from 'http-proxy-middleware';
import type { Scope, Upstream, UpstreamId } from './config';
import { Forwarder } from './forward';

/**
 * Public mount → service, from the registry (packages/registry; README "Mounts",
 * docs/architecture.md): the prefix, how the rest of the path maps, streaming, and which POSTs
 * only read or need admin.
 */
export interface Mount extends RegistryMount {
  service: UpstreamId;
  /** The service path for the part after `prefix`. */
  rewrite: (rest: string) => string;
}

export const MOUNTS: Mount[] = MOUNTED.map((s) => ({
  ...s.mount,
  service: s.id,
  rewrite: (rest: string) => toServicePath(s.mount, rest),
}));

/** The mount a canonical path falls under: its prefix, then the end or a "/" (case-sensitive). */
export function mountFor(path: string): Mount | undefined {
  return MOUNTS.find(
    (m) => path.startsWith(m.prefix) && (path.length === m.prefix.length || path[m.prefix.length] === '/'),
  );
}

/**
 * The scope a proxied call needs, from the effective method (after X-HTTP-Method-Override) and
 * the path below the mount: reads need read, POSTs that only read need read, key rotation
 * needs admin, the rest write.
 */
export function scopeForProxied(mount: Mount, method: string, rest: string): Scope {
  if (method === 'GET' || method === 'HEAD' || method === 'OPTIONS') return 'read';
  const path = rest.length > 1 ? rest.replace(/\/$/, '') : rest;
  if (method === 'POST' && mount.readOnlyPosts?.includes(path)) return 'read';
  if (method === 'POST' && mount.adminPosts?.includes(path)) return 'admin';
  return 'write';
}

/** Keep-alive to each upstream for WebSocket upgrades (hpm 3 would open a connection each otherwise). */
function agentFor(): http.Agent {
  return new http.Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 64, keepAliveMsecs: 1000 });
}

/** A request the gateway has authenticated: the id and scopes of the caller's key. */
export type ProxiedRequest = IncomingMessage & { keyId?: string; keyScopes?: readonly string[] };

/**
 * The caller's gateway key stays here, in every form it may come in (X-API-Key, a bearer
 * token, empty or not): the service gets its own token, when it has one, the caller's key id
 * in X-Qlab-Key-Id and its scopes in X-Qlab-Key-Scopes (whatever the caller sent is replaced),
 * and the mount in X-Forwarded-Prefix.
 * Done on the incoming headers, before the proxy copies them: Node sends a request's headers
 * at once when they hold `Expect: 100-continue`, so changing the outgoing request afterwards
 * (a proxyReq hook) would silently do nothing.
 */
function asGatewayCall(req: ProxiedRequest, m: Mount, upstream: Upstream): void {
  const h = req.headers;
  delete h['x-api-key'];
  delete h.authorization;
  delete h[CALLER_KEY_ID_HEADER];
  delete h[CALLER_SCOPES_HEADER];
  if (upstream.token) h.authorization = `Bearer ${upstream.token}`;
  if (req.keyId) h[CALLER_KEY_ID_HEADER] = req.keyId;
  if (req.keyScopes) h[CALLER_SCOPES_HEADER] = req.keyScopes.join(',');
  h['x-forwarded-prefix'] = m.prefix;
}

function proxyFailure(res: ServerResponse, status: 502 | 504, detail: string): void {
  sendRawProblem(res, problem(status, status === 504 ? 'UPSTREAM_TIMEOUT' : 'UPSTREAM_DOWN', detail));
}

/**
 * One proxy per mount. Bodies stream through untouched (no parser runs before these), the
 * caller's key is replaced by the service's own token, X-Forwarded-* and X-Forwarded-Prefix
 * tell the service its public address, and the proxy's own failures are problem+json:
 * 502 when the service is down, 504 when it is too slow. The service's own errors pass through.
 * HTTP goes through undici (forward.ts); WebSocket upgrades through http-proxy.
 */
export function createMountProxy(m: Mount, upstream: Upstream, timeoutMs: number): MountProxy {
  if (upstream.disabled)
    return {
      web: (_req, res) =>
        sendRawProblem(
          res,
          problem(503, 'SERVICE_DISABLED', `${upstream.id} is disabled in the gateway's --config`),
        ),
      upgrade: (_req, socket) => socket.destroy(),
      close: async () => undefined,
    };
  const forwarder = new Forwarder(upstream.url);
  const sockets = createProxyMiddleware<IncomingMessage, ServerResponse>({
    target: upstream.url,
    changeOrigin: true,
    xfwd: true,
    agent: agentFor(),
    // Never let the proxy subscribe to the server's upgrades itself: it would forward every
    // upgrade, authenticated or not. app.ts calls `.upgrade` after the key check.
    ws: false,
    pathRewrite: (path) => m.rewrite(path),
    on: {
      // An upgrade that fails before the service took it: the caller's socket is closed.
      error: (_err, _req, socket) => {
        if (!('setHeader' in socket)) socket.destroy();
      },
    },
  });
  return {
    web(req, res) {
      asGatewayCall(req, m, upstream);
      forwarder.forward(req, res, m.rewrite(req.url ?? '/'), m.streaming ? undefined : timeoutMs, (f) => {
        if (f.afterHeaders || res.headersSent) {
          // The service answered before it had the whole body (a 413, say) and then cut the
          // connection: its answer stands; drop what the caller still sends (kit lingerOnBody).
          if (res.writableEnded) lingerOnBody(req);
          else res.destroy();
          return;
        }
        proxyFailure(
          res,
          f.timedOut ? 504 : 502,
          f.timedOut
            ? `${upstream.id} did not answer in time`
            : `${upstream.id} is unreachable (${f.error.code ?? f.error.message})`,
        );
      });
    },
    upgrade(req, socket, head) {
      asGatewayCall(req, m, upstream);
      sockets.upgrade(req as never, socket as never, head);
    },
    close: () => forwarder.close(),
  };
}

/** A mount's proxy, called by app.ts only after the key check (HTTP and WebSocket). */
export interface MountProxy {
  web(req: ProxiedRequest, res: ServerResponse): void;
  upgrade(req: ProxiedRequest, socket: Duplex, head: Buffer): void;
  /** Ends the pooled upstream connections. */
  close(): Promise<void>;
}
