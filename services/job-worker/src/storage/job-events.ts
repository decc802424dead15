import { type CloudEvent, createEvent } from '@qlab/events';
import { type JobEventType, jobEvents } from '../events';

/**
 * The one definition of a job event, for both engines and every write path: the knex
 * transactions (through the outbox), SQLite's hot path (built here, in JS) and PostgreSQL's
 * hot path (built in SQL from `pgJobEventSql`, which reads the same field list and template).
 * The types and their data are declared in src/events.ts.
 */
const JOB_EVENT_SERVICE = jobEvents.service;

/** The jobs columns every job event's data carries, in this order. */
export const JOB_EVENT_FIELDS = ['job_id', 'task_type', 'status', 'progress', 'attempt'] as const;
type Numeric = 'progress' | 'attempt';
const NUMERIC: ReadonlySet<string> = new Set<Numeric>(['progress', 'attempt']);

export type JobEventRow = { [K in (typeof JOB_EVENT_FIELDS)[number]]?: unknown };

/** `data` of a job event: the fields above from a row or a Job, plus what this type adds. */
export function jobEventData(row: JobEventRow, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const data: Record<string, unknown> = {};
  for (const f of JOB_EVENT_FIELDS) data[f] = NUMERIC.has(f) ? Number(row[f]) : row[f];
  return { ...data, ...extra };
}

export const jobSubject = (jobId: unknown) => `jobs/${jobId}`;
export const jobTopic = (type: JobEventType) => jobEvents.topic(type);

/** A whole job event, stamped with `now` (the queue's clock). */
export function jobEvent(
  type: JobEventType,
  row: JobEventRow,
  extra: Record<string, unknown>,
  now: number,
): CloudEvent<Record<string, unknown>> {
  const event = createEvent(JOB_EVENT_SERVICE, type, jobSubject(row.job_id), jobEventData(row, extra));
  return { ...event, time: new Date(now).toISOString() };
}

/** The envelope without its per-row members (id, subject, data), as JSON: bound into PostgreSQL's SQL. */
export function jobEventTemplate(type: JobEventType, now: number): string {
  const { id: _id, subject: _subject, data: _data, ...envelope } = jobEvent(type, {}, {}, now);
  return JSON.stringify(envelope);
}

/**
 * The SQL expression of a job event's payload for the row in scope: the bound template (one `?`)
 * plus `id` (from `idColumn`), `subject` and `data` built from JOB_EVENT_FIELDS and `extra`
 * (column → SQL expression). Numbers are the columns' integers, as `jobEventData` makes them.
 */
export function pgJobEventSql(idColumn: string, extra: Record<string, string> = {}): string {
  const pairs = [
    ...JOB_EVENT_FIELDS.map((f) => `'${f}', ${f}`),
    ...Object.entries(extra).map(([k, expr]) => `'${k}', ${expr}`),
  ].join(', ');
  return `(?::jsonb || jsonb_build_object('id', ${idColumn}, 'subject', 'jobs/' || job_id, 'data', jsonb_build_object(${pairs})))::text`;
}
