import { type OpenApiDocument, problemResponse } from '@qlab/kit';

const header = (name: string, description: string, required = false) => ({
  name,
  in: 'header',
  required,
  description,
  schema: { type: 'string' },
});
const idParam = {
  name: 'id',
  in: 'path',
  required: true,
  schema: { type: 'string', pattern: '^[0-9a-f]{32}$' },
};
const tusResumable = header('Tus-Resumable', 'must be 1.0.0', true);
const ok = (description: string) => ({ description, content: { 'application/json': {} } });

const packet = {
  ciphertext: { type: 'string', contentEncoding: 'base64' },
  iv: { type: 'string', contentEncoding: 'base64', description: '12 bytes' },
  authTag: { type: 'string', contentEncoding: 'base64', description: '16 bytes' },
  aad: { type: 'string', contentEncoding: 'base64', description: 'JSON {sessionId, seq, codec, timestamp}' },
  seq: { type: 'integer', minimum: 0 },
};
const stream = {
  sessionId: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,128}$' },
  kid: { type: 'string', pattern: '^[a-f0-9]{16}$' },
  wrappedKey: {
    type: 'string',
    contentEncoding: 'base64',
    description: 'the AES-256 key, RSA-OAEP (SHA-256) wrapped',
  },
  fileName: { type: 'string', description: 'placed by UPLOAD_PATH_MODE; default uploaded_file.txt' },
  total: { type: 'integer', minimum: 1, description: 'qlab: packet count, to complete at once' },
};
const encryptionOnly = 'Only with UPLOAD_ENCRYPTION=true (404 otherwise). ';
const decryptErrors = {
  400: problemResponse('DECRYPTION_FAILED (altered, replayed or another key), UNKNOWN_KEY_ID, INVALID_INPUT'),
  401: problemResponse('missing or wrong API key'),
  409: problemResponse('UPLOAD_ALREADY_COMPLETE'),
  413: problemResponse('a packet above 16 MiB, or above UPLOAD_MAX_BYTES'),
  415: problemResponse('not application/json'),
};

/** IndexedCP's envelope-encrypted uploads (see the README). */
const encryptedPaths = {
  '/public-key': {
    get: {
      tags: ['indexedcp'],
      summary: `${encryptionOnly}The server's RSA public key, no API key needed`,
      security: [],
      responses: { 200: ok('{publicKey (PEM), kid, expiresAt}') },
    },
  },
  '/upload-encrypted': {
    post: {
      tags: ['indexedcp'],
      summary: `${encryptionOnly}One sealed packet`,
      requestBody: {
        required: true,
        content: {
          'application/json': {
            schema: {
              type: 'object',
              required: ['sessionId', 'kid', 'wrappedKey', 'ciphertext', 'iv', 'authTag', 'aad'],
              properties: { ...stream, ...packet },
            },
          },
        },
      },
      responses: { 200: ok('the chunk answer, with sessionId and seq'), ...decryptErrors },
    },
  },
  '/upload-encrypted-batch': {
    post: {
      tags: ['indexedcp'],
      summary: `${encryptionOnly}Sealed packets of one stream, read as a stream (stream fields before packets)`,
      requestBody: {
        required: true,
        content: {
          'application/json': {
            schema: {
              type: 'object',
              required: ['sessionId', 'kid', 'wrappedKey', 'packets'],
              properties: {
                ...stream,
                packets: {
                  type: 'array',
                  items: {
                    type: 'object',
                    required: ['ciphertext', 'iv', 'authTag', 'aad'],
                    properties: packet,
                  },
                },
              },
            },
          },
        },
      },
      responses: { 200: ok('the last chunk answer, with sessionId and packets (count)'), ...decryptErrors },
    },
  },
  '/rotate-keys': {
    post: {
      tags: ['indexedcp'],
      summary: `${encryptionOnly}Make a new active key pair; older ones keep decrypting until UPLOAD_ENCRYPTION_MAX_KEY_AGE`,
      responses: { 200: ok('{message, newKeyId}'), 401: problemResponse('missing or wrong API key') },
    },
  },
};

export const openapi: OpenApiDocument = {
  openapi: '3.1.0',
  info: {
    title: 'qlab chunked-upload',
    version: '0.1.0',
    description:
      'Large files in chunks. The IndexedCP protocol (POST /upload) and tus 1.0 (/files: creation, creation-with-upload, termination, checksum, expiration, concatenation). Every route but /health needs Authorization: Bearer <api key>.',
  },
  security: [{ bearer: [] }],
  components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
  paths: {
    ...encryptedPaths,
    '/upload': {
      post: {
        tags: ['indexedcp'],
        summary: 'One chunk of a file (IndexedCP)',
        parameters: [
          header('X-Chunk-Index', '0-based chunk index', true),
          header(
            'X-File-Name',
            'the client file name (UTF-8); placed by UPLOAD_PATH_MODE. Missing or empty: uploaded_file.txt',
          ),
          header(
            'X-Chunk-Total',
            'total chunk count: the file is published when all arrived, and upload.completed is sent. Without it the upload completes after UPLOAD_IDLE_COMPLETE_AFTER without chunks, or when a new chunk 0 of the name comes',
          ),
          header('X-Chunk-SHA256', 'hex SHA-256 of this chunk; a mismatch is refused (400)'),
          header(
            'X-Upload-Id',
            'a stable id for this upload, so a repeated chunk 0 is never mistaken for a new file',
          ),
        ],
        requestBody: {
          required: true,
          content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } },
        },
        responses: {
          200: ok(
            '{message, actualFilename, chunkIndex, clientFilename, uploadId, receivedChunks, bytesReceived, complete}',
          ),
          400: problemResponse('missing headers, refused path, checksum mismatch'),
          401: problemResponse('missing or wrong API key'),
          409: problemResponse(
            'chunk repeated with different content, target busy, or UPLOAD_ALREADY_COMPLETE (a chunk after its upload ended)',
          ),
          413: problemResponse('above UPLOAD_MAX_BYTES'),
        },
      },
    },
    '/files': {
      options: {
        tags: ['tus'],
        summary: 'tus discovery',
        security: [],
        responses: {
          204: { description: 'Tus-Version, Tus-Extension, Tus-Max-Size, Tus-Checksum-Algorithm' },
        },
      },
      post: {
        tags: ['tus'],
        summary: 'Create an upload (creation, creation-with-upload, concatenation)',
        parameters: [
          tusResumable,
          header('Upload-Length', 'total bytes'),
          header('Upload-Metadata', 'filename and other pairs, base64 values'),
          header('Upload-Concat', 'partial | final;<urls>'),
        ],
        responses: {
          201: { description: 'Location of the new upload' },
          400: problemResponse('bad headers'),
          412: problemResponse('unsupported Tus-Resumable'),
          413: problemResponse('above Tus-Max-Size'),
        },
      },
    },
    '/files/{id}': {
      head: {
        tags: ['tus'],
        summary: 'Offset of an upload',
        parameters: [idParam, tusResumable],
        responses: {
          200: { description: 'Upload-Offset, Upload-Length' },
          404: problemResponse('unknown'),
          410: problemResponse('terminated or expired'),
        },
      },
      patch: {
        tags: ['tus'],
        summary: 'Append bytes at Upload-Offset',
        parameters: [
          idParam,
          tusResumable,
          header('Upload-Offset', 'must equal the current offset', true),
          header('Upload-Checksum', 'sha1|sha256|md5 <base64>'),
        ],
        requestBody: {
          required: true,
          content: { 'application/offset+octet-stream': { schema: { type: 'string', format: 'binary' } } },
        },
        responses: {
          204: { description: 'new Upload-Offset' },
          403: problemResponse('final concatenated upload'),
          409: problemResponse('offset mismatch'),
          413: problemResponse('past Upload-Length'),
          415: problemResponse('wrong Content-Type'),
          460: problemResponse('checksum mismatch'),
        },
      },
      delete: {
        tags: ['tus'],
        summary: 'Terminate an upload',
        parameters: [idParam, tusResumable],
        responses: { 204: { description: 'terminated' } },
      },
    },
    '/info': {
      get: {
        tags: ['admin'],
        summary: 'Server info (port, upload dir, path mode, key count, active sessions)',
        responses: { 200: ok('info') },
      },
    },
    '/sessions': {
      get: { tags: ['admin'], summary: 'Active upload sessions', responses: { 200: ok('sessions') } },
      delete: {
        tags: ['admin'],
        summary: 'End active sessions (all, or idle for idle_ms) and remove their staged bytes',
        parameters: [
          { name: 'protocol', in: 'query', schema: { enum: ['indexedcp', 'tus'] } },
          { name: 'idle_ms', in: 'query', schema: { type: 'integer' } },
        ],
        responses: { 200: ok('{cleared}') },
      },
    },
    '/uploads': {
      get: {
        tags: ['admin'],
        summary: 'Uploads, newest first',
        description:
          "Finished uploads are everyone's to see; open ones only their owner's. Each item names its owner as `key_id`: `gw:<gateway key id>` for a caller behind the gateway, else the first 16 hex digits of the SHA-256 of the service key used (never a key).",
        parameters: ['status', 'protocol', 'q', 'limit', 'offset'].map((name) => ({
          name,
          in: 'query',
          schema: { type: 'string' },
        })),
        responses: { 200: ok('{items, total, limit, offset}') },
      },
    },
    '/uploads/{id}': {
      get: {
        tags: ['admin'],
        summary: 'One upload',
        parameters: [idParam],
        responses: { 200: ok('upload'), 404: problemResponse('unknown') },
      },
    },
    '/stats': {
      get: {
        tags: ['admin'],
        summary: 'Counts per status and bytes completed',
        responses: { 200: ok('stats') },
      },
    },
    '/stats/daily': {
      get: {
        tags: ['admin'],
        summary: 'Uploads completed and their bytes per UTC day, oldest first, today included',
        parameters: [
          { name: 'days', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 366, default: 14 } },
        ],
        responses: { 200: ok('{days, series: [{day, uploads, bytes}]}') },
      },
    },
  },
};
