import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import {
  AppError,
  afterBody,
  canonicalTarget,
  createServiceApp,
  effectiveMethod,
  isCorsPreflight,
  jsonBody,
  type Logger,
  lingerOnBody,
  notFound,
  parseInput,
  problem,
  refuseUpgrade,
  sendRawProblem,
} from '@qlab/kit';
import type { Express } from 'express';
import { z } from 'zod';
import { Aggregator } from './aggregate';
import { mergedAsyncApi } from './asyncapi-merge';
import { apiKeyAuth, authenticate, authFailureHeaders, dropKeyProtocol, needs } from './auth';
import { type Config, SCOPES } from './config';
import { consoleFiles } from './console-files';
import type { EventsSocket } from './events-socket';
import { KeySockets } from './key-sockets';
import type { KeyInfo, KeyStore } from './keys';
import { gatewayOpenApi } from './openapi';
import { mergedOpenApi } from './openapi-merge';
import { createMountProxy, MOUNTS, mountFor, type ProxiedRequest, scopeForProxied } from './proxy';
import type { RateLimiter } from './rate-limit';
import { fetchJson } from './upstream-client';

export interface GatewayDeps {
  logger: Logger;
  config: Pick<Config, 'upstreams' | 'proxyTimeoutMs' | 'aggregateTimeoutMs' | 'consoleDir'>;
  keys: KeyStore;
  /** Per-key request counters: this process's, or every replica's in Redis. */
  limiter: RateLimiter;
  events: EventsSocket;
}

export interface Gateway {
  /** The gateway's own routes (views, keys, health, docs, CORS preflights); serve `handle`, not this. */
  app: Express;
  /**
   * The server's request listener: proxied calls take a short path (key check, then the proxy)
   * past Express's router and body of middleware, which cost more than the proxying itself;
   * everything else goes to `app`.
   */
  handle(req: IncomingMessage, res: ServerResponse): void;
  /** Hook WebSocket upgrades (tracker sockets, /api/events) into the server, with key checks. */
  attach(server: Server): void;
  /** Ends the pooled connections to the services (after the server has drained). */
  close(): Promise<void>;
}

export function createGateway(deps: GatewayDeps): Gateway {
  const { config, keys, logger, limiter } = deps;
  const aggregator = new Aggregator(config.upstreams, config.aggregateTimeoutMs);
  const byId = new Map(config.upstreams.map((u) => [u.id, u]));
  const keyAuth = apiKeyAuth(keys, limiter);
  // No body parsers before the proxies: bodies must stream through untouched.
  const base = createServiceApp({
    service: 'gateway',
    logger,
    openapi: gatewayOpenApi(),
    openapiSource: mergedOpenApi(config.upstreams, config.aggregateTimeoutMs),
    asyncapi: mergedAsyncApi(config.upstreams, config.aggregateTimeoutMs),
    parseBodies: false,
    // The gateway's own /api routes need a key; each names its scope (needs(…) below).
    auth: (req, res, next) =>
      req.path === '/api' || req.path.startsWith('/api/') ? keyAuth(req, res, next) : next(),
    health: async () => {
      const checks = await Promise.all(
        config.upstreams.map((u) => fetchJson(u, '/health', config.aggregateTimeoutMs)),
      );
      return {
        services: Object.fromEntries(
          checks.map((c) => [c.service, c.ok ? 'ok' : c.disabled ? 'disabled' : `down: ${c.error}`]),
        ),
        all_services_up: checks.every((c) => c.ok || c.disabled),
      };
    },
  });
  const app = base.app;

  // The gateway's own routes; proxied calls never reach Express (see `handle`). Every route
  // names its scope (x-qlab-scope in openapi.ts says the same).

  // Gateway-owned routes first: the aggregates and key management.
  app.get('/api/db/overview', needs('read'), async (_req, res) => {
    const { results, body } = await aggregator.overview();
    Aggregator.send(res, results, body);
  });
  // The cross-service search is a POST by the seed's contract, but it only reads.
  app.post('/api/db/search', needs('read'), async (req, res) => {
    const q = parseInput(
      z.object({
        query: z.string().trim().min(1).max(200),
        limit: z.coerce.number().int().min(1).max(100).default(10),
      }),
      req.query,
      'query',
    );
    const { results, body } = await aggregator.search(q.query, q.limit);
    Aggregator.send(res, results, body);
  });
  app.get('/api/db/model/:name', needs('read'), async (req, res) => {
    const { name } = parseInput(z.object({ name: z.string().min(1).max(500) }), req.params, 'path');
    const { recent } = parseInput(
      z.object({ recent: z.coerce.number().int().min(0).max(50).default(10) }),
      req.query,
      'query',
    );
    const { results, body } = await aggregator.model(name, recent);
    Aggregator.send(res, results, body);
  });

  const json = jsonBody('16kb');
  // The caller's own key, whatever its scopes (a console shows who is signed in and hides what
  // the key may not do): never the key itself, nor anything about other keys.
  app.get('/api/keys/me', (_req, res) => {
    const { id, prefix, name, scopes, created_at, last_used_at } = res.locals.key as KeyInfo;
    res.setHeader('Cache-Control', 'no-store');
    res.json({ id, prefix, name, scopes, created_at, last_used_at });
  });
  app.get('/api/keys', needs('admin'), async (_req, res) => {
    res.json({ keys: await keys.list() });
  });
  app.post('/api/keys', needs('admin'), json, async (req, res) => {
    const body = parseInput(
      z.strictObject({
        name: z.string().min(1).max(200),
        scopes: z.array(z.enum(SCOPES)).min(1).default(['read']),
      }),
      req.body ?? {},
      'key',
    );
    const created = await keys.create(body.name, body.scopes);
    res.status(201).json({ key: created.key, ...created.info, note: 'the key is shown once; store it now' });
  });
  app.delete('/api/keys/:id', needs('admin'), async (req, res) => {
    const { id } = parseInput(z.object({ id: z.string().regex(/^[0-9a-f]{16}$/) }), req.params, 'path');
    if (!(await keys.revoke(id))) throw notFound(`no active key ${id}`);
    res.json({ revoked: id });
  });

  /** A failed key check as a problem document; anything but a refusal is a logged 500. */
  const authProblem = (err: unknown) => {
    if (err instanceof AppError) return problem(err.status, err.code, err.detail, err.extras);
    logger.error({ err }, 'authentication failed');
    return problem(500, 'INTERNAL', 'internal error');
  };

  // The console: its files and its page paths (console-files.ts); the APIs 404 as before.
  const consoleRouter = config.consoleDir ? consoleFiles(config.consoleDir) : undefined;
  if (consoleRouter) app.use(consoleRouter);
  else if (config.consoleDir)
    logger.warn(
      { dir: config.consoleDir },
      'no console build there: `/` is a 404 (pnpm --filter @qlab/console build)',
    );

  const proxies = new Map(
    MOUNTS.map((m) => [m.prefix, createMountProxy(m, byId.get(m.service)!, config.proxyTimeoutMs)]),
  );
  base.finish();

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    // Scope is judged on the canonical path and the effective method, the same ones every
    // service routes on (kit request-target.ts); anything else is a 400 here.
    try {
      req.url = canonicalTarget(req.url ?? '/');
    } catch (err) {
      sendRawProblem(res, authProblem(err));
      return;
    }
    // A bad override is refused after the key and its scope (judged on the wire method), so a
    // caller without a key or the scope learns nothing more from it.
    let method = req.method ?? 'GET';
    let badOverride: unknown;
    try {
      method = effectiveMethod(method, req.headers);
    } catch (err) {
      badOverride = err;
    }
    const url = req.url;
    const path = url.split('?')[0]!;
    const mount = mountFor(path);
    // CORS preflights carry no key: the app's CORS handling answers them.
    if (!mount || isCorsPreflight(req)) {
      app(req, res);
      return;
    }
    const started = performance.now();
    res.on('finish', () => {
      base.metrics.httpDuration.observe(
        method,
        `${mount.prefix}/*`,
        res.statusCode,
        (performance.now() - started) / 1000,
      );
      // A service that answered before the whole body came (a 413) no longer reads it: drop
      // the rest here, within bounds, so a caller that sends before it reads gets the answer
      // and its connection stays good (found by the outside review of issue 17).
      if (!req.complete && !req.destroyed) {
        req.unpipe(); // the proxy's pipe to the service would keep the body paused
        lingerOnBody(req);
      }
    });
    const rest = path.slice(mount.prefix.length) || '/';
    authenticate(keys, limiter, req, scopeForProxied(mount, method, rest)).then(
      (info) => {
        if (badOverride) return refuse(req, res, badOverride);
        (req as ProxiedRequest).keyId = info.id;
        (req as ProxiedRequest).keyScopes = info.scopes;
        // What Express's mount would do: the proxy sees the path below the prefix.
        // (`/api/jobs?limit=1` is `/?limit=1` below the mount: a target always starts with `/`.)
        const below = url.slice(mount.prefix.length);
        req.url = below.startsWith('/') ? below : `/${below}`;
        proxies.get(mount.prefix)!.web(req, res);
      },
      (err: unknown) => refuse(req, res, err),
    );
  };

  /**
   * A refused proxied call: its problem at once, the rest of its body dropped after (kit
   * afterBody). A caller with no valid key gets less of that: 1 MiB or 1 s, then the cut.
   */
  const refuse = (req: IncomingMessage, res: ServerResponse, err: unknown) =>
    afterBody(
      req,
      () => sendRawProblem(res, authProblem(err), authFailureHeaders(err)),
      authProblem(err).status === 401 ? { bytes: 1024 * 1024, ms: 1000 } : undefined,
    );

  return {
    app,
    handle,
    close: async () => {
      await Promise.all([...proxies.values()].map((p) => p.close()));
    },
    attach(server: Server) {
      const tracker = proxies.get('/api/v1')!;
      const open = new KeySockets(keys, logger);
      server.on('upgrade', async (req: IncomingMessage, socket: Duplex, head: Buffer) => {
        let path: string;
        try {
          req.url = canonicalTarget(req.url ?? '/');
          path = req.url.split('?')[0]!;
        } catch (err) {
          refuseUpgrade(socket, authProblem(err));
          return;
        }
        const isEvents = path === '/api/events';
        if (!isEvents && !path.startsWith('/api/v1/ws/')) {
          refuseUpgrade(socket, problem(404, 'NOT_FOUND', `no WebSocket at ${path}`));
          return;
        }
        // The Express chain does not run for upgrades: authenticate here, and only then let the
        // proxy see the socket (its own upgrade listener is off: proxy.ts).
        let info: Awaited<ReturnType<typeof authenticate>>;
        try {
          info = await authenticate(keys, limiter, req, 'read', true);
        } catch (err) {
          refuseUpgrade(socket, authProblem(err));
          return;
        }
        // Its key's revocation ends it (here or on any replica), not only new connections.
        open.add(info.id, socket);
        // A key given in the query string or as a subprotocol is not passed on.
        dropKeyProtocol(req);
        const u = new URL(req.url, 'http://x');
        u.searchParams.delete('api_key');
        req.url = `${u.pathname}${u.search}`;
        if (isEvents) deps.events.handle(req, socket, head);
        else {
          (req as ProxiedRequest).keyId = info.id;
          (req as ProxiedRequest).keyScopes = info.scopes;
          // Upgrades bypass Express's mount, so strip the prefix the rewrite adds back.
          req.url = req.url.slice('/api/v1'.length);
          tracker.upgrade(req, socket, head);
        }
      });
    },
  };
}
