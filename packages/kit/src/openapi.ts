/** A minimal OpenAPI 3.1 document type: enough structure to be useful, loose enough to write by hand. */
export interface OpenApiDocument {
  openapi: '3.1.0';
  info: { title: string; version: string; description?: string };
  servers?: { url: string }[];
  paths: Record<string, Record<string, unknown>>;
  components?: Record<string, unknown>;
  security?: Record<string, string[]>[];
  tags?: { name: string; description?: string }[];
}

/** Problem+json response, reused by every service's document. */
export const problemSchema = {
  type: 'object',
  required: ['type', 'title', 'status', 'detail'],
  properties: {
    type: { type: 'string' },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    code: { type: 'string' },
    requestId: { type: 'string' },
  },
} as const;

export function problemResponse(description: string) {
  return {
    description,
    content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
  };
}

/**
 * Adds the kit's own endpoints (health, ready, metrics) and shared components to a service's
 * document. They need no key: `x-qlab-scope: none` (the gateway names every other operation's).
 */
export function withKitPaths(doc: OpenApiDocument): OpenApiDocument {
  const json = (description: string) => ({ description, content: { 'application/json': {} } });
  return {
    ...doc,
    paths: {
      '/health': {
        get: {
          tags: ['ops'],
          summary: 'Liveness',
          security: [],
          'x-qlab-scope': 'none',
          responses: { 200: json('alive') },
        },
      },
      '/ready': {
        get: {
          tags: ['ops'],
          summary: 'Readiness: dependencies reachable',
          security: [],
          'x-qlab-scope': 'none',
          responses: { 200: json('ready'), 503: problemResponse('a dependency is down') },
        },
      },
      '/metrics': {
        get: {
          tags: ['ops'],
          summary: 'Prometheus metrics',
          security: [],
          'x-qlab-scope': 'none',
          responses: { 200: { description: 'text exposition format' } },
        },
      },
      '/asyncapi.json': {
        get: {
          tags: ['ops'],
          summary: 'AsyncAPI 3.0 document of the events published on MQTT',
          security: [],
          'x-qlab-scope': 'none',
          responses: { 200: json('the AsyncAPI document') },
        },
      },
      ...doc.paths,
    },
    components: {
      ...doc.components,
      schemas: { Problem: problemSchema, ...((doc.components?.schemas as object) ?? {}) },
    },
  };
}
