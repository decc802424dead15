import type { Outbox } from '@qlab/events';
import type { Knex } from '@qlab/kit';
import type { TrackerEvents } from '../events';
import {
  type BackendSnapshot,
  type BackendStatus,
  type JobDetails,
  type JobSnapshot,
  type JobStatus,
  TERMINAL,
  type UsageSnapshot,
} from '../providers/types';

const CHUNK = 400;
/** Reads of one job's own record before the tracker stops asking (failures, or no end time yet). */
export const MAX_DETAIL_ATTEMPTS = 8;
/** The wait before the next try: 5 min, 10 min, … at most a day. */
export const detailRetryDelayMs = (attempt: number) => Math.min(5 * 60_000 * 2 ** (attempt - 1), 86_400_000);
const ms = (iso: string | null) => (iso === null ? null : Date.parse(iso));
/** PostgreSQL returns BIGINT as a string: compare numbers. */
const numOrNull = (v: unknown) => (v === null || v === undefined ? null : Number(v));

interface StoredJob {
  status: string;
  quantum_seconds: number | null;
  started_at: number | string | null;
  ended_at: number | string | null;
  created_at: number | string;
  backend: string | null;
  program: string | null;
  user_id: string | null;
  session_id: string | null;
  tags: string;
  billing_final: boolean | number | null;
}

export interface JobChange {
  provider: string;
  id: string;
  backend: string | null;
  from: JobStatus | null;
  to: JobStatus;
}

export interface BackendChange {
  provider: string;
  name: string;
  from: BackendStatus | null;
  to: BackendStatus;
}

export interface RecordResult {
  seen: number;
  inserted: number;
  changed: JobChange[];
}

/**
 * Writes what a sync saw: new rows, changed rows, a history row per change, and the events for
 * the changes, each batch in one transaction. Unchanged rows are not rewritten, so a sync that
 * finds nothing new costs a read.
 */
export class Recorder {
  constructor(
    private readonly knex: Knex,
    private readonly outbox: Outbox<TrackerEvents> | undefined,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Records what an account's job list said. A field the list leaves empty (IBM's job object
   * has no times) never erases what a job's own record told us before (see details()).
   */
  async jobs(
    provider: string,
    account: string,
    jobs: JobSnapshot[],
    announceNew: boolean,
  ): Promise<RecordResult> {
    const result: RecordResult = { seen: jobs.length, inserted: 0, changed: [] };
    for (let i = 0; i < jobs.length; i += CHUNK) {
      const chunk = jobs.slice(i, i + CHUNK);
      await this.knex.transaction(async (trx) => {
        const existing = new Map<string, StoredJob>(
          (
            await trx('jobs')
              .select(
                'id',
                'status',
                'quantum_seconds',
                'started_at',
                'ended_at',
                'created_at',
                'backend',
                'program',
                'user_id',
                'session_id',
                'tags',
                'billing_final',
              )
              .where('provider', provider)
              .whereIn(
                'id',
                chunk.map((j) => j.id),
              )
          ).map((r) => [r.id, r]),
        );
        const now = this.now();
        const inserts: Record<string, unknown>[] = [];
        const transitions: Record<string, unknown>[] = [];
        const changed: JobChange[] = [];
        for (const j of chunk) {
          const old = existing.get(j.id);
          // What a snapshot leaves empty (a job re-read by id, one the provider lost) keeps
          // what was recorded; a job's creation time never moves.
          const row = {
            account,
            backend: j.backend ?? old?.backend ?? null,
            status: j.status,
            raw_status: j.raw_status,
            program: j.program ?? old?.program ?? null,
            user_id: j.user_id ?? old?.user_id ?? null,
            created_at: old ? Number(old.created_at) : ms(j.created_at),
            started_at: ms(j.started_at) ?? numOrNull(old?.started_at),
            ended_at: ms(j.ended_at) ?? numOrNull(old?.ended_at),
            quantum_seconds: j.quantum_seconds ?? numOrNull(old?.quantum_seconds),
            billing_final: j.billing_final || Boolean(old?.billing_final),
            shots: j.shots,
            tags: j.tags.length > 0 || !old ? JSON.stringify(j.tags) : old.tags,
            failure_reason: j.failure_reason,
            session_id: j.session_id ?? old?.session_id ?? null,
            updated_at: now,
          };
          if (!old) {
            inserts.push({ provider, id: j.id, ...row, first_seen_at: now, status_changed_at: now });
            transitions.push({ provider, job_id: j.id, from_status: null, to_status: j.status, at: now });
            if (announceNew)
              changed.push({ provider, id: j.id, backend: j.backend, from: null, to: j.status });
            continue;
          }
          const statusChanged = old.status !== j.status;
          const detailsChanged =
            numOrNull(old.quantum_seconds) !== row.quantum_seconds ||
            numOrNull(old.started_at) !== row.started_at ||
            numOrNull(old.ended_at) !== row.ended_at ||
            Boolean(old.billing_final) !== row.billing_final ||
            old.backend !== row.backend;
          if (!statusChanged && !detailsChanged) continue;
          await trx('jobs')
            .where({ provider, id: j.id })
            .update(statusChanged ? { ...row, status_changed_at: now } : row);
          if (statusChanged) {
            transitions.push({
              provider,
              job_id: j.id,
              from_status: old.status,
              to_status: j.status,
              at: now,
            });
            changed.push({
              provider,
              id: j.id,
              backend: j.backend,
              from: old.status as JobStatus,
              to: j.status,
            });
          }
        }
        if (inserts.length > 0) await trx.batchInsert('jobs', inserts, 100);
        if (transitions.length > 0) await trx.batchInsert('job_transitions', transitions, 200);
        result.inserted += inserts.length;
        result.changed.push(...changed);
        for (const c of changed) {
          await this.outbox?.record(trx, 'tracker.job.status_changed', `${c.provider}/${c.id}`, {
            provider: c.provider,
            job_id: c.id,
            backend: c.backend,
            from: c.from,
            to: c.to,
          });
        }
      });
    }
    if (result.changed.length > 0) this.outbox?.written();
    return result;
  }

  /**
   * Records what jobs' own records said (times, final billing). Known values are never erased
   * by an empty one, and billing once final stays final. Every job read is marked checked, so
   * it is not read again until its status changes, unless its billing is still pending; a job
   * whose read failed, or that finished without an end time yet, is tried again after a
   * growing wait, at most MAX_DETAIL_ATTEMPTS times.
   */
  async details(provider: string, details: JobDetails[]): Promise<void> {
    const now = this.now();
    for (let i = 0; i < details.length; i += CHUNK) {
      const chunk = details.slice(i, i + CHUNK);
      await this.knex.transaction(async (trx) => {
        const stored = new Map(
          (
            await trx('jobs')
              .select('id', 'status', 'ended_at', 'details_attempts')
              .where('provider', provider)
              .whereIn(
                'id',
                chunk.map((d) => d.id),
              )
          ).map((r) => [
            r.id as string,
            r as { status: string; ended_at: unknown; details_attempts: number },
          ]),
        );
        for (const d of chunk) {
          const old = stored.get(d.id);
          if (!old) continue;
          const patch: Record<string, unknown> = { details_checked_at: now, updated_at: now };
          const again = () => {
            const attempts = Number(old.details_attempts ?? 0) + 1;
            patch.details_attempts = attempts;
            patch.details_retry_at =
              attempts < MAX_DETAIL_ATTEMPTS ? now + detailRetryDelayMs(attempts) : null;
          };
          if (d.error) again();
          else {
            if (d.billing_final) patch.billing_final = true;
            if (d.started_at) patch.started_at = ms(d.started_at);
            if (d.ended_at) patch.ended_at = ms(d.ended_at);
            if (d.quantum_seconds !== null) patch.quantum_seconds = d.quantum_seconds;
            const endless =
              !d.gone && TERMINAL.has(old.status as JobStatus) && !d.ended_at && old.ended_at == null;
            if (endless) again();
            else {
              patch.details_attempts = 0;
              patch.details_retry_at = null;
            }
          }
          await trx('jobs').where({ provider, id: d.id }).update(patch);
        }
      });
    }
  }

  async backends(provider: string, backends: BackendSnapshot[]): Promise<BackendChange[]> {
    const changes: BackendChange[] = [];
    const now = this.now();
    await this.knex.transaction(async (trx) => {
      // The statuses stored are ones this recorder wrote from BACKEND_STATUSES.
      const existing = new Map<string, BackendStatus>(
        (await trx('backends').select('name', 'status').where('provider', provider)).map((r) => [
          r.name,
          r.status,
        ]),
      );
      const changed = async (
        name: string,
        from: BackendStatus | null,
        to: BackendStatus,
        reason: string | null,
      ) => {
        changes.push({ provider, name, from, to });
        await this.outbox?.record(trx, 'tracker.backend.status_changed', `${provider}/${name}`, {
          provider,
          backend: name,
          from,
          to,
          reason,
        });
      };
      for (const b of backends) {
        const row = {
          status: b.status,
          raw_status: b.raw_status,
          status_reason: b.status_reason,
          is_simulator: b.is_simulator,
          qubits: b.qubits,
          queue_length: b.queue_length,
          wait_seconds_avg: b.wait_seconds_avg,
          wait_seconds_p95: b.wait_seconds_p95,
          processor: b.processor,
          degraded: b.degraded,
          region: b.region,
          details: JSON.stringify(b.details),
          updated_at: now,
        };
        const old = existing.get(b.name);
        if (old === undefined) {
          await trx('backends').insert({
            provider,
            name: b.name,
            ...row,
            first_seen_at: now,
            status_changed_at: now,
          });
        } else {
          await trx('backends')
            .where({ provider, name: b.name })
            .update(old !== b.status ? { ...row, status_changed_at: now } : row);
        }
        if (old !== b.status) await changed(b.name, old ?? null, b.status, b.status_reason);
      }
      // A backend the provider stopped listing is offline, not silently kept "online".
      const listed = new Set(backends.map((b) => b.name));
      for (const [name, status] of existing) {
        if (status === 'offline' || listed.has(name)) continue;
        await trx('backends')
          .where({ provider, name })
          .update({ status: 'offline', raw_status: 'not listed', status_changed_at: now, updated_at: now });
        await changed(name, status, 'offline', 'no longer listed by the provider');
      }
      const snapshots = backends.map((b) => ({
        provider,
        name: b.name,
        at: now,
        status: b.status,
        queue_length: b.queue_length,
        wait_seconds_avg: b.wait_seconds_avg,
      }));
      if (snapshots.length > 0) await trx.batchInsert('backend_snapshots', snapshots, 200);
    });
    if (changes.length > 0) this.outbox?.written();
    return changes;
  }

  async usage(provider: string, u: UsageSnapshot): Promise<void> {
    await this.knex('usage_snapshots').insert({
      provider,
      at: this.now(),
      consumed_seconds: u.consumed_seconds,
      limit_seconds: u.limit_seconds,
      period_start: ms(u.period_start),
      period_end: ms(u.period_end),
    });
  }
}
