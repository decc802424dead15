import { type OpenApiDocument, problemResponse } from '@qlab/kit';

const ok = (description: string) => ({ description, content: { 'application/json': {} } });
const id = { name: 'id', in: 'path', required: true, schema: { type: 'string' } };
const lease = {
  type: 'object',
  required: ['worker_id', 'attempt'],
  properties: { worker_id: { type: 'string' }, attempt: { type: 'integer' } },
};

export const openapi: OpenApiDocument = {
  openapi: '3.1.0',
  info: {
    title: 'qlab job-worker',
    version: '0.1.0',
    description:
      'A durable job queue: priorities, delayed jobs, leases with heartbeats, retries with backoff, cancellation, per-job files. Events on qlab/job-worker/<type>.',
  },
  security: [{ bearer: [] }],
  components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
  paths: {
    '/jobs': {
      post: {
        tags: ['jobs'],
        summary: 'Create a job (JSON, or multipart with input files)',
        parameters: [
          {
            name: 'Idempotency-Key',
            in: 'header',
            description:
              'draft-ietf-httpapi-idempotency-key-header: a repeat with this key (per caller, 24 h) answers the first job with Idempotent-Replayed: true',
            schema: { type: 'string', minLength: 1, maxLength: 255 },
          },
        ],
        requestBody: {
          content: {
            'application/json': {
              schema: {
                type: 'object',
                required: ['task_type'],
                properties: {
                  task_type: { type: 'string' },
                  params: { type: 'object' },
                  priority: { type: 'integer' },
                  max_retries: { type: 'integer', default: 3 },
                  created_by: { type: 'string' },
                  run_at: { description: 'epoch ms or ISO 8601: not before' },
                  job_id: { type: 'string' },
                },
              },
            },
            'multipart/form-data': {
              schema: {
                type: 'object',
                description: 'the same fields (params as JSON text) plus files, stored as input/<name>',
              },
            },
          },
        },
        responses: {
          201: ok('the job'),
          400: problemResponse('invalid job'),
          409: problemResponse('job_id taken, or the job an Idempotency-Key created was deleted'),
          415: problemResponse('not JSON or multipart'),
          422: problemResponse('the Idempotency-Key was used for another job'),
        },
      },
      get: {
        tags: ['jobs'],
        summary: 'List jobs, newest first',
        parameters: ['status', 'task_type', 'created_by', 'limit', 'offset'].map((name) => ({
          name,
          in: 'query',
          schema: { type: 'string' },
        })),
        responses: { 200: ok('{items, total, limit, offset}') },
      },
    },
    '/jobs/batch': {
      post: {
        tags: ['jobs'],
        summary: 'Create up to 1,000 jobs in one transaction',
        responses: { 201: ok('{jobs: [ids]}') },
      },
    },
    '/jobs/stats': {
      get: {
        tags: ['jobs'],
        summary: 'Counts per status and task type, queue depth, oldest queued age',
        responses: { 200: ok('stats') },
      },
    },
    '/jobs/stats/completed': {
      get: {
        tags: ['jobs'],
        summary: 'Jobs completed per bucket, oldest first (for charts)',
        parameters: [
          {
            name: 'minutes',
            in: 'query',
            schema: { type: 'integer', minimum: 1, maximum: 44640, default: 60 },
          },
          {
            name: 'bucket_s',
            in: 'query',
            schema: { type: 'integer', minimum: 1, maximum: 86400, default: 60 },
          },
        ],
        responses: { 200: ok('{bucket_s, series: [{at, completed}]}'), 400: problemResponse('bad query') },
      },
    },
    '/jobs/task-types': {
      get: {
        tags: ['jobs'],
        summary: 'The built-in tasks with their params as JSON Schema (checked when a job is created)',
        responses: { 200: ok('{items: [{task_type, description, inputs, params}]}') },
      },
    },
    '/jobs/{id}/logs': {
      get: {
        tags: ['jobs'],
        summary: "The job's log lines, oldest first, after {after} (a seq), at most {limit} (<= 1000)",
        parameters: [
          id,
          { name: 'after', in: 'query', schema: { type: 'integer', minimum: 0 } },
          { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 1000 } },
        ],
        responses: {
          200: ok('{lines: [{seq, attempt, at, line}], next_after}'),
          404: problemResponse('unknown'),
        },
      },
      post: {
        tags: ['workers'],
        summary: 'Add log lines to the held attempt: {worker_id, attempt, lines} (at most 10,000 per job)',
        parameters: [id],
        responses: { 200: ok('{kept, dropped}'), 409: problemResponse('lease lost') },
      },
    },
    '/jobs/{id}': {
      get: {
        tags: ['jobs'],
        parameters: [id],
        responses: { 200: ok('the job'), 404: problemResponse('unknown') },
      },
      delete: {
        tags: ['jobs'],
        summary: 'Delete a job that is not running, with its files',
        parameters: [id],
        responses: { 204: { description: 'deleted' }, 409: problemResponse('running') },
      },
      patch: {
        tags: ['jobs'],
        summary:
          "The seed's update_job: progress and output, by the lease holder (worker_id + attempt) or an admin (no lease)",
        parameters: [id],
        requestBody: {
          required: true,
          content: {
            'application/json': {
              schema: {
                type: 'object',
                properties: {
                  progress: { type: 'number', minimum: 0, maximum: 100 },
                  output: { type: ['object', 'null'] },
                  worker_id: { type: 'string' },
                  attempt: { type: 'integer', minimum: 1 },
                },
              },
            },
          },
        },
        responses: {
          200: ok('the job'),
          400: problemResponse('nothing to update, or worker_id without attempt'),
          403: problemResponse('no lease and not an admin'),
          404: problemResponse('unknown'),
          409: problemResponse('lease lost, or the job is finished'),
        },
      },
    },
    '/jobs/{id}/cancel': {
      post: {
        tags: ['jobs'],
        summary: 'Cancel: queued at once, running ones are asked to stop',
        parameters: [id],
        responses: { 200: ok('the job'), 409: problemResponse('already finished') },
      },
    },
    '/jobs/{id}/retry': {
      post: {
        tags: ['jobs'],
        summary:
          'Retry a failed or cancelled job: queued now as a fresh run (retries, output and error reset; error history kept)',
        parameters: [id],
        responses: {
          200: ok('the job'),
          404: problemResponse('unknown'),
          409: problemResponse('not failed or cancelled'),
        },
      },
    },
    '/jobs/retry-failed': {
      post: {
        tags: ['jobs'],
        summary: 'Retry every failed job, or those of {task_type}: at most 1,000 per call',
        responses: { 200: ok('{retried, job_ids}') },
      },
    },
    '/jobs/{id}/files': {
      get: { tags: ['files'], parameters: [id], responses: { 200: ok('{files: [{path, size}]}') } },
    },
    '/jobs/{id}/files/{path}': {
      get: {
        tags: ['files'],
        summary: 'Download a job file',
        parameters: [id, { name: 'path', in: 'path', required: true, schema: { type: 'string' } }],
        responses: { 200: { description: 'bytes' } },
      },
      put: {
        tags: ['workers'],
        summary: 'Store an output file (under output/)',
        parameters: [id, { name: 'path', in: 'path', required: true, schema: { type: 'string' } }],
        responses: { 201: ok('{relative_path, size, sha256}') },
      },
    },
    '/jobs/claim': {
      post: {
        tags: ['workers'],
        summary: 'Claim the next job: highest priority, then oldest',
        requestBody: {
          content: {
            'application/json': {
              schema: {
                type: 'object',
                properties: {
                  worker_id: { type: 'string' },
                  task_types: { type: 'array', items: { type: 'string' } },
                  lease_ms: { type: 'integer' },
                },
              },
            },
          },
        },
        responses: {
          200: ok('the job, with its attempt (the fencing token)'),
          204: { description: 'nothing to do' },
        },
      },
    },
    '/jobs/{id}/heartbeat': {
      post: {
        tags: ['workers'],
        summary: 'Extend the lease, report progress; answers cancel_requested',
        parameters: [id],
        requestBody: { content: { 'application/json': { schema: lease } } },
        responses: { 200: ok('{cancel_requested, lease_expires_at}'), 409: problemResponse('lease lost') },
      },
    },
    '/jobs/{id}/complete': {
      post: {
        tags: ['workers'],
        parameters: [id],
        responses: { 200: ok('the job'), 409: problemResponse('lease lost') },
      },
    },
    '/jobs/{id}/fail': {
      post: {
        tags: ['workers'],
        summary: 'Fail this attempt: retried with backoff until max_retries',
        parameters: [id],
        responses: { 200: ok('the job'), 409: problemResponse('lease lost') },
      },
    },
    '/jobs/{id}/cancelled': {
      post: {
        tags: ['workers'],
        summary: 'The worker stopped the job after a cancel request',
        parameters: [id],
        responses: { 200: ok('the job') },
      },
    },
  },
};
