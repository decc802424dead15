import { randomUUID } from 'node:crypto';
import cors from 'cors';
import express, { type Express, type RequestHandler, Router } from 'express';
import { pinoHttp } from 'pino-http';
import swaggerUi from 'swagger-ui-express';
import { notFoundHandler, type ProblemDocument, problemErrorHandler, serviceUnavailable } from './errors';
import { formBody, jsonBody } from './json-body';
import type { Logger } from './logger';
import { createMetrics, type Metrics } from './metrics';
import { type OpenApiDocument, withKitPaths } from './openapi';
import { canonicalTarget, effectiveMethod, isCorsPreflight } from './request-target';

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

  app.use(
    pinoHttp({
      logger: options.logger,
      genReqId: (req, res) => {
        const given = req.headers['x-request-id'];
        const id = typeof given === 'string' && /^[\w.-]{1,128}$/.test(given) ? given : randomUUID();
        res.setHeader('X-Request-Id', id);
        return id;
      },
      autoLogging: { ignore: (req) => req.url === '/health' || req.url === '/metrics' },
      customLogLevel: (_req, res, err) => (err || res.statusCode >= 500 ? 'error' : 'info'),
      // One short line per request: headers can carry secrets and are rarely worth the bytes.
      serializers: {
        req: (req: { id: unknown; method: string; url: string; remoteAddress?: string }) => ({
          id: req.id,
          method: req.method,
          url: req.url,
          remote: req.remoteAddress,
        }),
        res: (res: { statusCode: number }) => ({ status: res.statusCode }),
      },
    }),
  );
  app.use(metrics.middleware);
  // Before anything decides on the path (auth, CORS, routes): the canonical target the gateway judged.
  app.use((req, _res, next) => {
    try {
      req.url = canonicalTarget(req.url);
      next();
    } catch (err) {
      next(err);
    }
  });
  app.use(
    cors({
      origin: options.corsOrigin ?? true,
      exposedHeaders: ['Location', 'ETag', 'X-Request-Id', ...(options.corsExposedHeaders ?? [])],
      maxAge: 600,
      // Only real preflights (they carry Access-Control-Request-Method) are answered here; any
      // other OPTIONS request reaches the routes (tus uses OPTIONS for discovery).
      preflightContinue: true,
    }),
  );
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
