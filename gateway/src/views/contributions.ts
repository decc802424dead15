import { type AnalyticsDomain, analyticsDomains, type MountedId } from '@qlab/registry';
import type { Fetched } from '../upstream-client';

/** A GET to the contributing service (its token and the views' deadline are the aggregator's). */
export type Get = (path: string) => Promise<Fetched>;

export interface SearchQuery {
  /** As the caller wrote it. */
  query: string;
  /** URL-encoded, for query strings and paths. */
  encoded: string;
  limit: number;
  /** Could be a hashID (letters, digits, `_ . -`). */
  hashLike: boolean;
  /** Could be an id in a path ("." or ".." would be another path). */
  idLike: boolean;
}

/** One service's share of a view: its value (or hits) and every answer it was built from. */
export interface Part<T> {
  value: T;
  /** The answers that count: a failed one names the service in `missing_services`. */
  results: Fetched[];
}

/** What a service adds to the cross-service views (the registry's `views` names where). */
export interface Contribution {
  overview?: (get: Get) => Promise<Part<unknown>>;
  search?: (get: Get, q: SearchQuery) => Promise<Part<unknown[]>>;
}

type Items = { items?: Record<string, unknown>[] };
const data = (f: Fetched) => (f.ok ? f.data : null);
const total = (f: Fetched) => (f.ok ? ((f.data as { total?: number }).total ?? null) : null);
const items = (f: Fetched | null) => (f?.ok ? ((f.data as Items).items ?? []) : []);
/** A lookup by id answered 404 found nothing: an answer, not a failure. */
const failedLookup = (f: Fetched | null): Fetched[] => (f && !f.ok && f.status !== 404 ? [f] : []);
/** One GET whose JSON is the whole overview member. */
const statsAt =
  (path: string) =>
  async (get: Get): Promise<Part<unknown>> => {
    const f = await get(path);
    return { value: data(f), results: [f] };
  };

function analytics(domain: AnalyticsDomain): Contribution {
  return {
    overview: statsAt(`/api/${domain}/db/stats`),
    search: async (get, q) => {
      const f = await get(`/api/${domain}/db/search?q=${q.encoded}&limit=${q.limit}`);
      return { value: f.ok ? ((f.data as { results?: unknown[] }).results ?? []) : [], results: [f] };
    },
  };
}

/**
 * Each mounted service's share of `GET /api/db/overview` and `GET /api/db/search` (the seed's
 * overview and result_counts, extended to every service). A service in the registry without an
 * entry here does not compile; test/views.test.ts checks these and the registry's `views` agree.
 */
export const CONTRIBUTIONS: Record<MountedId, Contribution> = {
  'calibration-store': {
    overview: async (get) => {
      const [calibrations, results] = await Promise.all([
        get('/calibrations/list?limit=1'),
        get('/results/list?limit=1'),
      ]);
      return {
        value:
          calibrations.ok || results.ok
            ? { calibrations: total(calibrations), results: total(results) }
            : null,
        results: [calibrations, results],
      };
    },
    // The store lists by hashID only: matches by hashID, and by hashID or notes among the newest 500.
    search: async (get, q) => {
      const [byHash, recent] = await Promise.all([
        q.hashLike ? get(`/calibrations/list?hashID=${q.encoded}&limit=${q.limit}`) : Promise.resolve(null),
        get('/calibrations/list?limit=500'),
      ]);
      const needle = q.query.toLowerCase();
      const found = new Map<string, Record<string, unknown>>();
      for (const item of [...items(byHash), ...items(recent)]) {
        const text = `${item.hashID ?? ''} ${item.notes ?? ''}`.toLowerCase();
        if (text.includes(needle)) found.set(String(item.id ?? item.hashID), item);
      }
      return { value: [...found.values()].slice(0, q.limit), results: [recent, ...failedLookup(byHash)] };
    },
  },
  'chunked-upload': {
    overview: statsAt('/stats'),
    search: async (get, q) => {
      const f = await get(`/uploads?q=${q.encoded}&limit=${q.limit}`);
      return { value: items(f), results: [f] };
    },
  },
  'job-worker': {
    overview: statsAt('/jobs/stats'),
    // By task type, and by id when the query can be one.
    search: async (get, q) => {
      const [byType, byId] = await Promise.all([
        get(`/jobs?task_type=${q.encoded}&limit=${q.limit}`),
        q.idLike ? get(`/jobs/${q.encoded}`) : Promise.resolve(null),
      ]);
      const jobs: unknown[] = [...(byId?.ok ? [byId.data] : []), ...items(byType)];
      return { value: jobs.slice(0, q.limit), results: [byType, ...failedLookup(byId)] };
    },
  },
  'quantum-tracker': {
    overview: statsAt('/api/v1/dashboard/stats/jobs'),
    // A provider job by id, and backends whose name holds the query.
    search: async (get, q) => {
      const [job, backends] = await Promise.all([
        q.idLike ? get(`/api/v1/jobs/${q.encoded}`) : Promise.resolve(null),
        get('/api/v1/backends'),
      ]);
      const needle = q.query.toLowerCase();
      const hits: unknown[] = job?.ok ? [{ kind: 'job', ...(job.data as object) }] : [];
      if (backends.ok)
        for (const b of (backends.data as { backends?: { name: string }[] }).backends ?? [])
          if (b.name.toLowerCase().includes(needle)) hits.push({ kind: 'backend', ...b });
      return { value: hits.slice(0, q.limit), results: [backends, ...failedLookup(job)] };
    },
  },
  ...(Object.fromEntries(analyticsDomains.map((d) => [`analytics-${d}`, analytics(d)])) as Record<
    `analytics-${AnalyticsDomain}`,
    Contribution
  >),
};
