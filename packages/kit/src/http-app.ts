import type { IncomingMessage, ServerResponse } from 'node:http';
import express, { type Express, type RequestHandler, Router } from 'express';
import swaggerUi from 'swagger-ui-express';
import { notFoundHandler, type ProblemDocument, problemErrorHandler, serviceUnavailable } from './errors';
import { formBody, jsonBody } from './json-body';
import type { Logger } from './logger';
import { createMetrics, type Metrics } from './metrics';
import { type OpenApiDocument, withKitPaths } from './openapi';
import { answerProbe, createRequestLayer, setHeaders } from './request-layer';
import { canonicalTarget, effectiveMethod, isCorsPreflight } from './request-target';

type ExpressHandle = (req: IncomingMessage, res: ServerResponse, done?: (err?: unknown) => void) => void;

export interface ServiceAppOptions {
  service: string;
  logger: Logger;
  openapi: OpenApiDocument;
  /**
   * A document built at request time (the gateway merges its services' documents); /openapi.json
   * serves it instead of `openapi`, and /docs loads it from there.
   */
  openapiSource?: () => Promise<OpenApiDocument>;
  /**
   * The AsyncAPI document of the events the service publishes (@qlab/events asyncApiDocument of
   * its catalogue), served at /asyncapi.json; a function is called per request (the gateway's merge).
   */
  asyncapi?: object | (() => Promise<object>);
  /** Limit for JSON and urlencoded bodies (bytes or a size string). Default 1mb. */
  jsonLimit?: string | number;
  /** Checks run by GET /ready; throw to report not ready. */
  readiness?: () => Promise<void>;
  /** Extra fields for GET /health. */
  health?: () => Record<string, unknown> | Promise<Record<string, unknown>>;
  /** Allowed CORS origins; default any. */
  corsOrigin?: string | string[] | boolean;
  /** Response headers browsers may read, besides Location, ETag and X-Request-Id. */
  corsExposedHeaders?: string[];
  /**
   * Who may call: runs after the canonical-path check and the CORS preflight answer, before
   * the method override is judged and before any route (the kit's open ones let themselves
   * through: isOpenRequest). So a caller without a key gets 401 before any other refusal.
   */
  auth?: RequestHandler;
  /**
   * Members every problem document also carries, for clients of the system a service replaces
   * (the calibration store adds QIBO DB's `error`). RFC 9457 allows extension members.
   */
  problemMembers?: (doc: ProblemDocument) => Record<string, unknown>;
  /**
   * Parse JSON and urlencoded bodies for every route (default true). Services that stream raw
   * bodies turn this off: curl's --data-binary says urlencoded, and a parser would eat the bytes.
   */
  parseBodies?: boolean;
}

export interface ServiceApp {
  app: Express;
  metrics: Metrics;
  /** Call after mounting the service's routes: adds the 404 and problem+json error handlers. */
  finish(): Express;
}

/**
 * The Express base every service shares: request ids, pino logging, CORS, JSON limits,
 * /health, /ready, /metrics, /openapi.json, /docs and /asyncapi.json. It never listens.
 */
export function createServiceApp(options: ServiceAppOptions): ServiceApp {
  const app = express();
  const metrics = createMetrics(options.service);
  const doc = withKitPaths(options.openapi);
  app.disable('x-powered-by');
  // One spelling per route: /Files is not /files (see request-target.ts). Routers made with
  // serviceRouter() follow the same rule.
  app.set('case sensitive routing', true);
  app.set('trust proxy', 'loopback, linklocal, uniquelocal');
  app.set('json spaces', 0);

  const layer = createRequestLayer({
    logger: options.logger,
    metrics,
    cors: {
      origin: options.corsOrigin ?? true,
      exposedHeaders: ['Location', 'ETag', 'X-Request-Id', ...(options.corsExposedHeaders ?? [])],
      maxAge: 600,
    },
  });
  const healthOf = (extra: Record<string, unknown>) =>
    JSON.stringify({ status: 'ok', service: options.service, ...extra });
  const health = {
    path: '/health',
    contentType: 'application/json; charset=utf-8',
    body: () => {
      const extra = options.health ? options.health() : {};
      return extra instanceof Promise ? extra.then(healthOf) : healthOf(extra);
    },
  };
  const scrape = {
    path: '/metrics',
    contentType: metrics.registry.contentType,
    body: () => metrics.registry.metrics(),
  };
  // Every caller of the app (listen, supertest, the gateway's handle) comes in through
  // app.handle: the kit's layer runs there, the probes are answered there, the rest is routed.
  const routable = app as unknown as { handle: ExpressHandle };
  const route = routable.handle.bind(app);
  routable.handle = (req, res, done) => {
    const headers = layer.begin(req, res);
    // A probe that fails is routed after all: Express's error handler answers it.
    const routed = () => {
      setHeaders(res, headers);
      route(req, res, done);
    };
    if (answerProbe(req, res, health, headers, routed)) return;
    if (answerProbe(req, res, scrape, headers, routed)) return;
    routed();
  };
  // Before anything decides on the path (auth, CORS, routes): the canonical target the gateway judged.
  app.use((req, _res, next) => {
    try {
      req.url = canonicalTarget(req.url);
      next();
    } catch (err) {
      next(err);
    }
  });
  // A CORS preflight (its headers are the request layer's) is answered once its path is canonical.
  app.use((req, res, next) => {
    if (isCorsPreflight(req)) {
      res.status(204).setHeader('Content-Length', '0');
      res.end();
      return;
    }
    next();
  });
  if (options.auth) app.use(options.auth);
  // The method routes act on: the effective one the gateway judged (request-target.ts).
  app.use((req, _res, next) => {
    try {
      req.method = effectiveMethod(req.method, req.headers);
      next();
    } catch (err) {
      next(err);
    }
  });
  if (options.parseBodies !== false) {
    const limit = options.jsonLimit ?? '1mb';
    app.use(jsonBody(limit));
    app.use(formBody(limit));
  }

  app.get('/health', (async (_req, res) => {
    const extra = options.health ? await options.health() : {};
    res.json({ status: 'ok', service: options.service, ...extra });
  }) as RequestHandler);
  app.get('/ready', (async (_req, res, next) => {
    try {
      if (options.readiness) await options.readiness();
      res.json({ status: 'ready' });
    } catch (err) {
      next(serviceUnavailable(`not ready: ${(err as Error).message}`));
    }
  }) as RequestHandler);
  app.get('/metrics', (async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  }) as RequestHandler);
  const events = options.asyncapi;
  if (events) {
    app.get('/asyncapi.json', (async (_req, res, next) => {
      try {
        res.json(typeof events === 'function' ? await events() : events);
      } catch (err) {
        next(err);
      }
    }) as RequestHandler);
  }
  const source = options.openapiSource;
  if (source) {
    app.get('/openapi.json', (async (_req, res, next) => {
      try {
        res.json(withKitPaths(await source()));
      } catch (err) {
        next(err);
      }
    }) as RequestHandler);
    app.use(
      '/docs',
      swaggerUi.serve,
      swaggerUi.setup(undefined, {
        customSiteTitle: `${options.service} API`,
        swaggerOptions: { url: '/openapi.json' },
      }),
    );
  } else {
    app.get('/openapi.json', (_req, res) => {
      res.json(doc);
    });
    app.use('/docs', swaggerUi.serve, swaggerUi.setup(doc, { customSiteTitle: `${options.service} API` }));
  }

  return {
    app,
    metrics,
    finish() {
      app.use(notFoundHandler);
      app.use(problemErrorHandler(options.logger, options.problemMembers));
      return app;
    },
  };
}

/** A router that matches paths case-sensitively, like the service app (see request-target.ts). */
export function serviceRouter(): Router {
  return Router({ caseSensitive: true });
}
