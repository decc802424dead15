import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { Link } from 'wouter';
import { Card, ErrorBox, Facts, QueryView } from '../components/states';
import { api, download } from '../lib/api';
import { useAuth } from '../lib/auth';
import { bytes, when } from '../lib/format';
import type { Job } from './jobs';

interface LogLine {
  seq: number;
  attempt: number;
  at: number;
  line: string;
}
interface JobFile {
  path: string;
  size: number;
}

const RUNNING = new Set(['queued', 'processing']);

function Logs({ id, running }: { id: string; running: boolean }) {
  const logs = useQuery({
    queryKey: ['jobs', 'logs', id],
    queryFn: () => api<{ lines: LogLine[] }>(`/api/jobs/${encodeURIComponent(id)}/logs?limit=1000`),
    refetchInterval: running ? 1500 : false,
  });
  return (
    <Card title="Log" wide>
      <QueryView q={logs} isEmpty={(d) => d.lines.length === 0} empty="The handler has written no log lines.">
        {(d) => (
          <pre className="log" data-testid="log-lines">
            {d.lines
              .map((l) => `[${new Date(l.at).toLocaleTimeString()} #${l.attempt}] ${l.line}`)
              .join('\n')}
          </pre>
        )}
      </QueryView>
    </Card>
  );
}

function Files({ id }: { id: string }) {
  const files = useQuery({
    queryKey: ['jobs', 'files', id],
    queryFn: () => api<{ files: JobFile[] }>(`/api/jobs/${encodeURIComponent(id)}/files`),
  });
  const save = useMutation({
    mutationFn: (f: JobFile) =>
      download(
        `/api/jobs/${encodeURIComponent(id)}/files/${f.path.split('/').map(encodeURIComponent).join('/')}`,
        f.path.split('/').pop() ?? 'file',
      ),
  });
  return (
    <Card title="Files">
      <QueryView q={files} isEmpty={(d) => d.files.length === 0} empty="No input or output files.">
        {(d) => (
          <ul className="files">
            {d.files.map((f) => (
              <li key={f.path}>
                <button type="button" className="link" onClick={() => save.mutate(f)}>
                  {f.path}
                </button>{' '}
                <span className="muted">{bytes(f.size)}</span>
              </li>
            ))}
          </ul>
        )}
      </QueryView>
      {save.isError && <ErrorBox error={save.error} />}
    </Card>
  );
}

export function JobDetail({ id }: { id: string }) {
  const { can } = useAuth();
  const client = useQueryClient();
  const job = useQuery({
    queryKey: ['jobs', 'item', id],
    queryFn: () => api<Job>(`/api/jobs/${encodeURIComponent(id)}`),
    // Live events refresh it; polling covers a socket that is reconnecting.
    refetchInterval: (q) => (q.state.data && RUNNING.has(q.state.data.status) ? 2000 : false),
  });
  const act = useMutation({
    mutationFn: (action: 'cancel' | 'retry') =>
      api<Job>(`/api/jobs/${encodeURIComponent(id)}/${action}`, { method: 'POST', json: {} }),
    onSuccess: () => client.invalidateQueries({ queryKey: ['jobs'] }),
  });
  return (
    <>
      <p>
        <Link href="/jobs">← Jobs</Link>
      </p>
      <QueryView q={job}>
        {(j) => (
          <>
            <h1>
              Job <code>{j.job_id}</code>
            </h1>
            <div className="grid">
              <Card title="Status">
                <p>
                  <span className={`status ${j.status}`} data-testid="job-status">
                    {j.status}
                  </span>
                </p>
                <progress max={100} value={j.progress} aria-label="progress">
                  {j.progress}%
                </progress>{' '}
                {j.progress}%
                <Facts
                  items={[
                    ['task', j.task_type],
                    ['attempt', `${j.attempt} (retries ${j.retry_count} of ${j.max_retries})`],
                    ['created', when(j.created_at)],
                    ['started', when(j.started_at)],
                    ['finished', when(j.completed_at)],
                  ]}
                />
                {can('write') && (
                  <div className="actions">
                    {RUNNING.has(j.status) && (
                      <button type="button" onClick={() => act.mutate('cancel')} disabled={act.isPending}>
                        Cancel
                      </button>
                    )}
                    {(j.status === 'error' || j.status === 'cancelled') && (
                      <button type="button" onClick={() => act.mutate('retry')} disabled={act.isPending}>
                        Retry
                      </button>
                    )}
                  </div>
                )}
                {act.isError && <ErrorBox error={act.error} />}
              </Card>
              <Card title="Params and output">
                <h3>params</h3>
                <pre>{JSON.stringify(j.params, null, 2)}</pre>
                <h3>output</h3>
                <pre>{j.output ? JSON.stringify(j.output, null, 2) : '—'}</pre>
                {j.error_message && (
                  <>
                    <h3>error</h3>
                    <pre className="error-text">{j.error_message}</pre>
                  </>
                )}
              </Card>
              <Logs id={j.job_id} running={RUNNING.has(j.status)} />
              <Files id={j.job_id} />
              {j.errors.length > 0 && (
                <Card title="Error history">
                  <ol>
                    {j.errors.map((e) => (
                      <li key={`${e.attempt}-${e.at}`}>
                        attempt {e.attempt}, {when(e.at)}: {e.message}
                      </li>
                    ))}
                  </ol>
                </Card>
              )}
            </div>
          </>
        )}
      </QueryView>
    </>
  );
}
