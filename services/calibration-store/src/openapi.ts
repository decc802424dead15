import { type OpenApiDocument, problemResponse } from '@qlab/kit';

const json = (description: string, schema: object = { type: 'object' }) => ({
  description,
  content: { 'application/json': { schema } },
});

const item = {
  type: 'object',
  properties: {
    id: { type: 'integer' },
    hashID: { type: 'string' },
    name: { type: 'string', description: 'results only' },
    run_id: { type: ['string', 'null'], description: 'results only' },
    notes: { type: ['string', 'null'] },
    created_at: { type: 'string', example: '2025-09-11 12:34:56', description: 'UTC' },
    filename: { type: 'string' },
    size: { type: 'integer' },
    sha256: { type: 'string' },
    download_url: { type: 'string' },
  },
};

const uploadForm = (withName: boolean) => ({
  required: true,
  content: {
    'multipart/form-data': {
      schema: {
        type: 'object',
        required: ['hashID', 'archive', ...(withName ? ['name'] : [])],
        properties: {
          hashID: { type: 'string', maxLength: 256 },
          ...(withName
            ? {
                name: { type: 'string', maxLength: 256 },
                runID: {
                  type: 'string',
                  maxLength: 256,
                  description: 'aliases: experimentID, experiment_id',
                },
              }
            : {}),
          notes: { type: 'string' },
          archive: { type: 'string', format: 'binary', description: 'a zip archive' },
        },
      },
    },
  },
});

const uploaded = json('stored', {
  type: 'object',
  properties: {
    status: { const: 'ok' },
    id: { type: 'integer' },
    created_at: { type: 'string' },
    run_id: { type: ['string', 'null'], description: 'results only' },
    sha256: { type: 'string' },
    size: { type: 'integer' },
    download_url: { type: 'string' },
  },
});

const uploadErrors = {
  400: problemResponse('missing or invalid fields'),
  401: problemResponse('missing or wrong token'),
  413: problemResponse('larger than QIBO_MAX_UPLOAD_BYTES'),
  415: problemResponse('not multipart, or the file is not a zip archive'),
};

const listParams = (withName: boolean) => [
  { name: 'hashID', in: 'query', schema: { type: 'string' } },
  ...(withName
    ? [
        { name: 'name', in: 'query', schema: { type: 'string' } },
        { name: 'runID', in: 'query', schema: { type: 'string' } },
      ]
    : []),
  { name: 'since', in: 'query', schema: { type: 'string' }, description: 'ISO 8601 or epoch ms, inclusive' },
  { name: 'until', in: 'query', schema: { type: 'string' }, description: 'ISO 8601 or epoch ms, exclusive' },
  {
    name: 'limit',
    in: 'query',
    schema: { type: 'integer', minimum: 1, maximum: 1000 },
    description: 'without it every item is returned (streamed), as QIBO DB does',
  },
  { name: 'offset', in: 'query', schema: { type: 'integer', minimum: 0, default: 0 } },
];

const idParam = { name: 'id', in: 'path', required: true, schema: { type: 'integer' } };

const archiveStream = {
  description: 'the zip archive; supports Range, ETag is the SHA-256',
  content: { 'application/zip': { schema: { type: 'string', format: 'binary' } } },
};

function kindPaths(kind: 'calibration' | 'result') {
  const base = `/${kind}s`;
  const withName = kind === 'result';
  const tag = `${kind}s`;
  const selector = {
    type: 'object',
    required: ['hashID', ...(withName ? ['name'] : [])],
    properties: {
      hashID: { type: 'string' },
      ...(withName
        ? { name: { type: 'string' }, runID: { type: 'string', description: 'unknown run: 404' } }
        : {}),
    },
  };
  return {
    [`${base}/upload`]: {
      post: {
        tags: [tag],
        summary: `Upload a ${kind} archive`,
        requestBody: uploadForm(withName),
        responses: { 200: uploaded, ...uploadErrors },
      },
    },
    [`${base}/list`]: {
      get: {
        tags: [tag],
        summary: `List ${kind}s, newest first: all of them, or a page with limit/offset`,
        parameters: listParams(withName),
        responses: {
          200: json('a page of items', {
            type: 'object',
            properties: {
              items: { type: 'array', items: item },
              total: { type: 'integer' },
              limit: { type: 'integer', description: 'only when paging' },
              offset: { type: 'integer', description: 'only when paging' },
            },
          }),
          400: problemResponse('bad query'),
        },
      },
    },
    [`${base}/latest`]: {
      get: {
        tags: [tag],
        summary: `Metadata of the newest ${kind}`,
        parameters: listParams(withName).slice(0, withName ? 3 : 1),
        responses: { 200: json('newest', item), 404: problemResponse('none stored') },
      },
    },
    [`${base}/download`]: {
      post: {
        tags: [tag],
        summary: `Newest ${kind} for the selector as JSON with base64 data (seed API)`,
        requestBody: {
          required: true,
          content: {
            'application/json': { schema: selector },
            'application/x-www-form-urlencoded': { schema: selector },
            'multipart/form-data': { schema: selector },
          },
        },
        responses: {
          200: json('archive as base64', {
            type: 'object',
            properties: {
              notes: { type: ['string', 'null'] },
              filename: { type: 'string' },
              created_at: { type: 'string', description: 'UTC' },
              ...(withName ? { run_id: { type: ['string', 'null'] } } : {}),
              data_b64: { type: 'string' },
            },
          }),
          404: problemResponse('no match'),
          422: problemResponse('archive above QIBO_JSON_DOWNLOAD_MAX_BYTES: use the streaming endpoint'),
        },
      },
    },
    [`${base}/archive`]: {
      get: {
        tags: [tag],
        summary: `Stream the newest ${kind} archive for the selector`,
        parameters: listParams(withName)
          .slice(0, withName ? 3 : 1)
          .map((p) => (p.name === 'runID' ? p : { ...p, required: true })),
        responses: { 200: archiveStream, 206: archiveStream, 404: problemResponse('no match') },
      },
    },
    [`${base}/{id}`]: {
      get: {
        tags: [tag],
        summary: `Metadata of one ${kind}`,
        parameters: [idParam],
        responses: { 200: json('item', item), 404: problemResponse('unknown id') },
      },
      delete: {
        tags: [tag],
        summary: `Delete a ${kind} (admin token); its content goes when nothing else refers to it`,
        parameters: [idParam],
        responses: {
          204: { description: 'deleted' },
          403: problemResponse('not the admin token'),
          404: problemResponse('unknown id'),
        },
      },
    },
    [`${base}/{id}/entries`]: {
      get: {
        tags: [tag],
        summary: `The files inside one ${kind} archive, read from its central directory (no contents read)`,
        parameters: [
          idParam,
          { name: 'offset', in: 'query', schema: { type: 'integer', minimum: 0, default: 0 } },
          {
            name: 'limit',
            in: 'query',
            schema: { type: 'integer', minimum: 1, maximum: 10000, default: 1000 },
          },
        ],
        responses: {
          200: json(
            '{entries: [{name, size, compressed_size, crc32, modified, directory, encrypted}], total, offset, limit}',
            {
              type: 'object',
              required: ['entries', 'total', 'offset', 'limit'],
              properties: {
                entries: {
                  type: 'array',
                  items: {
                    type: 'object',
                    properties: {
                      name: { type: 'string' },
                      size: { type: 'integer' },
                      compressed_size: { type: 'integer' },
                      crc32: { type: 'string', pattern: '^[0-9a-f]{8}$' },
                      modified: { type: ['string', 'null'], format: 'date-time' },
                      directory: { type: 'boolean' },
                      encrypted: { type: 'boolean' },
                    },
                  },
                },
                total: { type: 'integer' },
                offset: { type: 'integer' },
                limit: { type: 'integer' },
              },
            },
          ),
          404: problemResponse('unknown id'),
        },
      },
    },
    [`${base}/{id}/archive`]: {
      get: {
        tags: [tag],
        summary: `Stream one ${kind} archive (Range, If-None-Match)`,
        parameters: [idParam],
        responses: {
          200: archiveStream,
          206: archiveStream,
          304: { description: 'not modified' },
          404: problemResponse('unknown id'),
          416: problemResponse('bad range'),
        },
      },
    },
  };
}

const bestRun = {
  type: 'object',
  properties: {
    status: { const: 'ok' },
    id: { type: 'integer' },
    calibration_hash_id: { type: 'string' },
    run_id: { type: 'string' },
    created_at: { type: 'string', description: 'UTC' },
  },
};
const bestRunInput = {
  type: 'object',
  required: ['calibrationHashID', 'runID'],
  properties: { calibrationHashID: { type: 'string' }, runID: { type: 'string' } },
};

const bestRunPaths = {
  '/bestruns/set': {
    post: {
      tags: ['bestruns'],
      summary: 'Record the best run of a calibration (QIBO DB)',
      requestBody: {
        required: true,
        content: {
          'application/json': { schema: bestRunInput },
          'application/x-www-form-urlencoded': { schema: bestRunInput },
          'multipart/form-data': { schema: bestRunInput },
        },
      },
      responses: {
        200: json('recorded', bestRun),
        400: problemResponse('calibrationHashID or runID missing'),
      },
    },
  },
  '/bestruns/get': {
    get: {
      tags: ['bestruns'],
      summary: 'The newest best run',
      responses: { 200: json('newest', bestRun), 404: problemResponse('no best run set') },
    },
  },
  '/bestruns/list': {
    get: {
      tags: ['bestruns'],
      summary: 'Best runs, newest first',
      parameters: [
        {
          name: 'limit',
          in: 'query',
          schema: { type: 'integer', default: 10 },
          description: 'clamped to 1-100',
        },
      ],
      responses: {
        200: json('best runs', {
          type: 'object',
          properties: { status: { const: 'ok' }, items: { type: 'array', items: bestRun } },
        }),
        400: problemResponse('limit is not an integer'),
      },
    },
  },
};

export const openapi: OpenApiDocument = {
  openapi: '3.1.0',
  info: {
    title: 'qlab calibration-store',
    version: '0.1.0',
    description:
      'Calibration and result archives (zip) with notes, keyed by hashID, newest first. Compatible with the QIBO DB server API.',
  },
  security: [{ bearer: [] }],
  components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
  paths: {
    '/upload': {
      post: {
        tags: ['calibrations'],
        summary: 'Alias of /calibrations/upload',
        requestBody: uploadForm(false),
        responses: { 200: uploaded, ...uploadErrors },
      },
    },
    ...kindPaths('calibration'),
    ...kindPaths('result'),
    ...bestRunPaths,
    '/stats': {
      get: { tags: ['ops'], summary: 'Counts and bytes stored', responses: { 200: json('stats') } },
    },
  },
};
