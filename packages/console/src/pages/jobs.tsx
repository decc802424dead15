import { keepPreviousData, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { type FormEvent, useEffect, useRef, useState } from 'react';
import { Link, useLocation } from 'wouter';
import { type FormValues, type ObjectSchema, paramsFrom, SchemaFields } from '../components/schema-form';
import { Card, ErrorBox, Pager, QueryView } from '../components/states';
import { api, query } from '../lib/api';
import { useAuth } from '../lib/auth';
import { count, when } from '../lib/format';

export const STATUSES = ['queued', 'processing', 'completed', 'error', 'cancelled'] as const;

export interface Job {
  job_id: string;
  task_type: string;
  params: Record<string, unknown>;
  status: (typeof STATUSES)[number];
  progress: number;
  output: Record<string, unknown> | null;
  error_message: string | null;
  created_at: number;
  started_at: number | null;
  completed_at: number | null;
  retry_count: number;
  max_retries: number;
  attempt: number;
  errors: { at: number; attempt: number; message: string }[];
}
interface Stats {
  by_status: Record<string, number>;
  queue_depth: number;
}
interface TaskType {
  task_type: string;
  description: string;
  inputs: 'required' | 'optional' | 'none';
  params: ObjectSchema;
}

const LIMIT = 25;

/** Counts per status, polled; jobs/s is the change of the completed count between two polls. */
function StatsCard() {
  const q = useQuery({
    queryKey: ['jobs', 'stats'],
    queryFn: () => api<Stats>('/api/jobs/stats'),
    refetchInterval: 2000,
  });
  const last = useRef<{ at: number; done: number } | null>(null);
  const [rate, setRate] = useState<number | null>(null);
  useEffect(() => {
    if (!q.data) return;
    const done = (q.data.by_status.completed ?? 0) + (q.data.by_status.error ?? 0);
    const now = Date.now();
    if (last.current && now > last.current.at)
      setRate(((done - last.current.done) * 1000) / (now - last.current.at));
    last.current = { at: now, done };
  }, [q.data]);
  return (
    <Card title="Queue" wide>
      <QueryView q={q}>
        {(s) => (
          <dl className="facts row">
            {STATUSES.map((st) => (
              <div key={st}>
                <dt>{st}</dt>
                <dd>{count(s.by_status[st] ?? 0)}</dd>
              </div>
            ))}
            <div>
              <dt>jobs/s</dt>
              <dd>{rate === null ? '—' : rate.toFixed(1)}</dd>
            </div>
          </dl>
        )}
      </QueryView>
    </Card>
  );
}

function CreateJob() {
  const client = useQueryClient();
  const [, navigate] = useLocation();
  const types = useQuery({
    queryKey: ['jobs', 'task-types'],
    queryFn: () => api<{ items: TaskType[] }>('/api/jobs/task-types'),
    staleTime: Number.POSITIVE_INFINITY,
  });
  const [type, setType] = useState('');
  const [values, setValues] = useState<FormValues>({});
  const [files, setFiles] = useState<File[]>([]);
  const spec = types.data?.items.find((t) => t.task_type === type);
  const create = useMutation({
    mutationFn: async () => {
      const params = paramsFrom(spec!.params, values);
      if (files.length === 0)
        return api<Job>('/api/jobs', { method: 'POST', json: { task_type: type, params } });
      const form = new FormData();
      form.set('task_type', type);
      form.set('params', JSON.stringify(params));
      for (const f of files) form.append('file', f, f.name);
      return api<Job>('/api/jobs', { method: 'POST', body: form });
    },
    onSuccess: (job) => {
      client.invalidateQueries({ queryKey: ['jobs'] });
      navigate(`/jobs/${job.job_id}`);
    },
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    create.mutate();
  };
  return (
    <Card title="New job">
      <QueryView q={types}>
        {(t) => (
          <form onSubmit={submit} className="stack">
            <label htmlFor="task-type">Task</label>
            <select
              id="task-type"
              required
              value={type}
              onChange={(e) => {
                setType(e.target.value);
                setValues({});
              }}
            >
              <option value="">Choose a task…</option>
              {t.items.map((x) => (
                <option key={x.task_type} value={x.task_type}>
                  {x.task_type}
                </option>
              ))}
            </select>
            {spec && (
              <>
                <p className="muted">{spec.description}</p>
                <SchemaFields schema={spec.params} values={values} onChange={setValues} />
                {spec.inputs !== 'none' && (
                  <div className="field">
                    <label htmlFor="job-files">
                      Input files{spec.inputs === 'required' ? ' (required)' : ''}
                    </label>
                    <input
                      id="job-files"
                      type="file"
                      multiple
                      required={spec.inputs === 'required'}
                      onChange={(e) => setFiles([...(e.target.files ?? [])])}
                    />
                  </div>
                )}
                <button type="submit" disabled={create.isPending}>
                  {create.isPending ? 'Creating…' : 'Create job'}
                </button>
              </>
            )}
            {create.isError && <ErrorBox error={create.error} />}
          </form>
        )}
      </QueryView>
    </Card>
  );
}

export function Jobs() {
  const { can } = useAuth();
  const client = useQueryClient();
  const [status, setStatus] = useState('');
  const [taskType, setTaskType] = useState('');
  const [offset, setOffset] = useState(0);
  const list = useQuery({
    queryKey: ['jobs', 'list', status, taskType, offset],
    queryFn: () =>
      api<{ items: Job[]; total: number }>(
        `/api/jobs${query({ status, task_type: taskType, limit: LIMIT, offset })}`,
      ),
    placeholderData: keepPreviousData,
    refetchInterval: 10_000,
  });
  const retryFailed = useMutation({
    mutationFn: () =>
      api<{ retried: number }>('/api/jobs/retry-failed', {
        method: 'POST',
        json: taskType ? { task_type: taskType } : {},
      }),
    onSuccess: () => client.invalidateQueries({ queryKey: ['jobs'] }),
  });
  return (
    <>
      <h1>Jobs</h1>
      <div className="grid">
        <StatsCard />
        <Card title="Jobs" wide>
          <div className="filters">
            <label htmlFor="job-status">Status</label>
            <select
              id="job-status"
              value={status}
              onChange={(e) => {
                setStatus(e.target.value);
                setOffset(0);
              }}
            >
              <option value="">any</option>
              {STATUSES.map((s) => (
                <option key={s}>{s}</option>
              ))}
            </select>
            <label htmlFor="job-type">Task type</label>
            <input
              id="job-type"
              value={taskType}
              onChange={(e) => {
                setTaskType(e.target.value.trim());
                setOffset(0);
              }}
            />
            {can('write') && (
              <button type="button" onClick={() => retryFailed.mutate()} disabled={retryFailed.isPending}>
                Retry all failed
              </button>
            )}
          </div>
          {retryFailed.isSuccess && <p role="status">{retryFailed.data.retried} job(s) queued again.</p>}
          {retryFailed.isError && <ErrorBox error={retryFailed.error} />}
          <QueryView q={list} isEmpty={(d) => d.items.length === 0} empty="No jobs match.">
            {(d) => (
              <>
                <table>
                  <thead>
                    <tr>
                      <th scope="col">job</th>
                      <th scope="col">task</th>
                      <th scope="col">status</th>
                      <th scope="col">progress</th>
                      <th scope="col">created</th>
                    </tr>
                  </thead>
                  <tbody>
                    {d.items.map((j) => (
                      <tr key={j.job_id}>
                        <td>
                          <Link href={`/jobs/${j.job_id}`}>
                            <code>{j.job_id.slice(0, 13)}</code>
                          </Link>
                        </td>
                        <td>{j.task_type}</td>
                        <td>
                          <span className={`status ${j.status}`}>{j.status}</span>
                        </td>
                        <td>{j.progress}%</td>
                        <td>{when(j.created_at)}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
                <Pager offset={offset} limit={LIMIT} total={d.total} onChange={setOffset} />
              </>
            )}
          </QueryView>
        </Card>
        {can('write') && <CreateJob />}
      </div>
    </>
  );
}
