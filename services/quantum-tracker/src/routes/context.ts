import { notFound, parseInput } from '@qlab/kit';
import type { Request } from 'express';
import { z } from 'zod';
import type { AnswerCache } from '../answer-cache';
import type { TrackerQueries } from '../storage/queries';
import type { ProviderSync, SyncKind, SyncReport } from '../sync/sync-loop';
import { type Answer, answerWith } from './answer';
import { hours, name } from './params';

export interface TrackerRouteDeps {
  queries: TrackerQueries;
  syncs: ProviderSync[];
  /** Runs one provider's sync where it may run (this replica, or the one leading it). */
  runSync: (sync: ProviderSync, kind: SyncKind) => Promise<SyncReport>;
  pricePerQuantumSecond: number;
  currency: string;
  startedAt: number;
  /** Changes whenever recorded data may have changed (each finished sync). */
  dataVersion: () => number;
  /** Where GET answers are kept (shared with the server's short path, see fast-answers.ts). */
  cache: AnswerCache;
}

/** What each resource's routes get. */
export interface RouteContext {
  deps: TrackerRouteDeps;
  q: TrackerQueries;
  configured: boolean;
  answer: Answer;
  /** Runs a sync of `kind` now, for one provider or all; an unknown provider is a 404. */
  syncNow: (kind: SyncKind, provider?: string) => Promise<{ synced: unknown[] }>;
}

export function routeContext(deps: TrackerRouteDeps): RouteContext {
  const configured = deps.syncs.length > 0;
  return {
    deps,
    q: deps.queries,
    configured,
    answer: answerWith({ cache: deps.cache, dataVersion: deps.dataVersion, configured }),
    syncNow: async (kind, provider) => {
      const targets = deps.syncs.filter((s) => !provider || s.name === provider);
      if (provider && targets.length === 0) throw notFound(`provider ${provider} is not configured`);
      return { synced: await Promise.all(targets.map((s) => deps.runSync(s, kind))) };
    },
  };
}

/** The backend of a `/:name` route, with `?hours=` of its history; one not seen is a 404. */
export async function backendNamed(q: TrackerQueries, req: Request) {
  const p = parseInput(z.object({ name }), req.params, 'path');
  const b = await q.backend(p.name, parseInput(hours, req.query, 'query').hours);
  if (!b) throw notFound(`backend ${p.name} has not been seen at any configured provider`);
  return b;
}
