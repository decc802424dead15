import type { OpenApiDocument } from '@qlab/kit';

type Op = [method: 'get' | 'post', path: string, tag: string, summary: string];

const OPS: Op[] = [
  [
    'get',
    '/api/v1/jobs',
    'jobs',
    'Jobs, newest first: provider, backend, status, program, user_id, since, until, limit (≤500), offset',
  ],
  ['get', '/api/v1/jobs/recent', 'jobs', 'The most recently created jobs (limit, default 20)'],
  ['post', '/api/v1/jobs/sync', 'jobs', 'Sync jobs from the providers now (provider=ibm|ionq for one)'],
  [
    'get',
    '/api/v1/jobs/stats/overview',
    'jobs',
    'Counts by status and provider, success rate, mean queue and run time, quantum seconds',
  ],
  ['get', '/api/v1/jobs/trends/daily', 'jobs', 'Jobs per day and status (days, default 30)'],
  ['get', '/api/v1/jobs/by-backend/{backend}', 'jobs', 'Jobs on one backend'],
  ['get', '/api/v1/jobs/by-status/{status}', 'jobs', 'Jobs in one normalized status'],
  ['get', '/api/v1/jobs/{id}', 'jobs', 'One job with its recorded state transitions'],
  ['get', '/api/v1/backends', 'backends', 'All backends (provider, status filters)'],
  ['get', '/api/v1/backends/{name}', 'backends', 'One backend with its snapshot history (hours, default 24)'],
  ['post', '/api/v1/backends/sync', 'backends', 'Sync backends now'],
  [
    'get',
    '/api/v1/backends/stats/overview',
    'backends',
    'Counts by status, simulators, real devices, qubits, queued jobs',
  ],
  [
    'get',
    '/api/v1/backends/utilization/weekly',
    'backends',
    'Per backend over 7 days: jobs, quantum seconds, utilization, uptime, queue length',
  ],
  ['get', '/api/v1/backends/filter/operational', 'backends', 'Online backends'],
  ['get', '/api/v1/backends/filter/simulators', 'backends', 'Simulators'],
  ['get', '/api/v1/backends/filter/real-devices', 'backends', 'Real devices'],
  ['get', '/api/v1/queue', 'queue', 'Queue length and typical wait per backend'],
  ['get', '/api/v1/queue/summary', 'queue', 'Totals and the busiest backend'],
  ['get', '/api/v1/queue/longest-wait', 'queue', 'Online backends with the longest wait (limit)'],
  ['get', '/api/v1/queue/shortest-wait', 'queue', 'Online backends with the shortest wait (limit)'],
  ['get', '/api/v1/queue/by-backend/{name}', 'queue', 'One backend’s queue now and over time (hours)'],
  ['get', '/api/v1/dashboard', 'dashboard', 'Everything a dashboard shows in one answer'],
  ['get', '/api/v1/dashboard/stats/jobs', 'dashboard', 'Job statistics'],
  ['get', '/api/v1/dashboard/stats/backends', 'dashboard', 'Backend statistics'],
  [
    'get',
    '/api/v1/dashboard/system-status',
    'dashboard',
    'Providers configured, last success and last error per provider',
  ],
  ['post', '/api/v1/dashboard/refresh', 'dashboard', 'Sync everything now'],
  ['get', '/api/v1/dashboard/health', 'dashboard', 'Provider health'],
  ['get', '/api/v1/dashboard/metrics', 'dashboard', 'Row counts, recent syncs, provider usage'],
  ['get', '/api/v1/analytics/job-trends', 'analytics', 'Daily job trends (days)'],
  ['get', '/api/v1/analytics/backend-utilization', 'analytics', 'Utilization per backend (days, default 7)'],
  ['get', '/api/v1/analytics/status-distribution', 'analytics', 'Share of each status (days)'],
  [
    'get',
    '/api/v1/analytics/backend-comparison',
    'analytics',
    'Backends side by side: success rate, queue and run time, uptime',
  ],
  [
    'get',
    '/api/v1/analytics/performance-metrics',
    'analytics',
    'Success and failure rate, mean queue and run time, jobs per day',
  ],
  [
    'get',
    '/api/v1/analytics/cost-analysis',
    'analytics',
    'Quantum seconds × TRACKER_PRICE_PER_QUANTUM_SECOND per backend and day',
  ],
  ['get', '/api/v1/analytics/user-activity', 'analytics', 'Jobs and quantum seconds per user'],
  ['get', '/api/v1/analytics/regional-stats', 'analytics', 'Backends and jobs per region'],
];

const paths: Record<string, Record<string, unknown>> = {};
for (const [method, path, tag, summary] of OPS) {
  const params = [...path.matchAll(/\{(\w+)\}/g)].map((m) => ({
    name: m[1],
    in: 'path',
    required: true,
    schema: { type: 'string' },
  }));
  paths[path] = paths[path] ?? {};
  paths[path][method] = {
    tags: [tag],
    summary,
    parameters: params,
    responses: {
      200: {
        description: 'JSON; with no provider configured it also carries `notice`',
        content: { 'application/json': {} },
      },
    },
  };
}

export const openapi: OpenApiDocument = {
  openapi: '3.1.0',
  info: {
    title: 'qlab quantum-tracker',
    version: '0.1.0',
    description:
      'Jobs, backends and queues recorded from real providers (IBM Quantum Platform, IonQ). Statuses: validating, queued, running, completed, failed, cancelled, unknown. WebSockets: /api/v1/ws/dashboard, /api/v1/ws/jobs, /api/v1/ws/queue. Events on qlab/quantum-tracker/<type>.',
  },
  security: [{ bearer: [] }],
  components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
  paths,
};
