import { type OpenApiDocument, problemResponse } from '@qlab/kit';

const ok = (description: string) => ({ description, content: { 'application/json': {} } });

/**
 * The gateway's own paths. GET /openapi.json merges these with every service's document,
 * re-rooted under its mount (see openapi-merge.ts).
 */
export function gatewayOpenApi(): OpenApiDocument {
  return {
    openapi: '3.1.0',
    info: {
      title: 'qlab',
      version: '0.1.0',
      description:
        'One API for every qlab service. Send `X-API-Key: <key>` (or `Authorization: Bearer <key>`). Scopes: read (GET, HEAD and the POSTs that only read), write (changes), admin (keys); every operation names its scope in `x-qlab-scope`. Mounts: /api/store → calibration-store, /api/uploads → chunked-upload, /api/v1 → quantum-tracker (and WebSockets /api/v1/ws/*), /api/jobs → job-worker, /api/db/{test|generator|benchmark} → analytics. Live events: WebSocket /api/events?topic=qlab/#.',
    },
    security: [{ apiKey: [] }],
    components: { securitySchemes: { apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key' } } },
    paths: {
      '/api/db/overview': {
        get: {
          tags: ['gateway'],
          'x-qlab-scope': 'read',
          summary: 'Stats of every service at once (partial when one is down: completed=false)',
          responses: { 200: ok('overview'), 502: problemResponse('no service answered') },
        },
      },
      '/api/db/search': {
        post: {
          tags: ['gateway'],
          'x-qlab-scope': 'read',
          summary:
            'Search every service: analytics records, calibrations, uploads, jobs, tracker jobs and backends',
          parameters: [
            { name: 'query', in: 'query', required: true, schema: { type: 'string' } },
            { name: 'limit', in: 'query', schema: { type: 'integer', default: 10 } },
          ],
          responses: { 200: ok('{results, result_counts}') },
        },
      },
      '/api/db/model/{name}': {
        get: {
          tags: ['gateway'],
          'x-qlab-scope': 'read',
          summary: 'One model across test, generator and benchmark',
          parameters: [{ name: 'name', in: 'path', required: true, schema: { type: 'string' } }],
          responses: { 200: ok('{overview, recent_*}') },
        },
      },
      '/api/keys': {
        get: {
          tags: ['keys'],
          'x-qlab-scope': 'admin',
          summary: 'List keys (admin)',
          responses: { 200: ok('{keys}') },
        },
        post: {
          tags: ['keys'],
          'x-qlab-scope': 'admin',
          summary: 'Create a key {name, scopes} (admin); the key is shown once',
          responses: { 201: ok('{key, id, scopes}') },
        },
      },
      '/api/keys/me': {
        get: {
          tags: ['keys'],
          'x-qlab-scope': 'any',
          summary: "The caller's own key: id, prefix, name and scopes (any valid key)",
          responses: {
            200: ok('{id, prefix, name, scopes, created_at, last_used_at}'),
            401: problemResponse('no valid key'),
          },
        },
      },
      '/api/keys/{id}': {
        delete: {
          tags: ['keys'],
          'x-qlab-scope': 'admin',
          summary: 'Revoke a key (admin)',
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
          responses: { 200: ok('revoked'), 404: problemResponse('no such key') },
        },
      },
    },
  };
}
