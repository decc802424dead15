import { useQuery } from '@tanstack/react-query';
import { useMemo, useState } from 'react';
import { Card, QueryView } from '../components/states';
import { TimeChart } from '../components/time-chart';
import { api } from '../lib/api';
import { count, when } from '../lib/format';
import { topicMatches, topicOf, useLive } from '../lib/live';

interface Health {
  services: Record<string, string>;
  all_services_up: boolean;
}
type Overview = Record<string, unknown> & { completed?: boolean; missing_services?: string[] };
interface Backend {
  name: string;
}
interface BackendHistory {
  name: string;
  history: { at: string; queue_length: number | null }[];
}

function Health() {
  const q = useQuery({
    queryKey: ['overview', 'health'],
    queryFn: () => api<Health>('/health'),
    refetchInterval: 5000,
  });
  return (
    <Card title="Services">
      <QueryView q={q}>
        {(h) => (
          <ul className="health">
            {Object.entries(h.services).map(([name, state]) => (
              <li key={name} className={state === 'ok' ? 'ok' : state === 'disabled' ? 'off' : 'down'}>
                <span>{name}</span> <strong>{state}</strong>
              </li>
            ))}
          </ul>
        )}
      </QueryView>
    </Card>
  );
}

/** The numbers of one section of /api/db/overview (nested objects flattened one level). */
function numbersOf(section: unknown): [string, unknown][] {
  if (!section || typeof section !== 'object') return [];
  const out: [string, unknown][] = [];
  for (const [k, v] of Object.entries(section)) {
    if (typeof v === 'number' || v === null) out.push([k, v]);
    else if (v && typeof v === 'object' && !Array.isArray(v))
      for (const [k2, v2] of Object.entries(v)) if (typeof v2 === 'number') out.push([`${k} ${k2}`, v2]);
  }
  return out.slice(0, 8);
}

function Counts() {
  const q = useQuery({ queryKey: ['overview', 'counts'], queryFn: () => api<Overview>('/api/db/overview') });
  return (
    <Card title="Counts" wide>
      <QueryView q={q}>
        {(o) => (
          <>
            {o.completed === false && (
              <p role="status" className="warn">
                Partial answer: {(o.missing_services ?? []).join(', ')} did not answer.
              </p>
            )}
            <div className="sections">
              {Object.entries(o)
                .filter(([k]) => k.endsWith('_stats'))
                .map(([k, v]) => (
                  <section key={k} aria-label={k}>
                    <h3>{k.replace(/_stats$/, '')}</h3>
                    <dl className="facts small">
                      {numbersOf(v).map(([name, value]) => (
                        <div key={name}>
                          <dt>{name.replaceAll('_', ' ')}</dt>
                          <dd>{count(value)}</dd>
                        </div>
                      ))}
                    </dl>
                  </section>
                ))}
            </div>
          </>
        )}
      </QueryView>
    </Card>
  );
}

function Charts() {
  // Both series are counted by the services' databases, not binned here from a sample.
  const jobs = useQuery({
    queryKey: ['jobs', 'completed-per-minute'],
    queryFn: () =>
      api<{ series: { at: number; completed: number }[] }>(
        '/api/jobs/stats/completed?minutes=60&bucket_s=60',
      ),
  });
  const uploads = useQuery({
    queryKey: ['uploads', 'per-day'],
    queryFn: () => api<{ series: { day: string; bytes: number }[] }>('/api/uploads/stats/daily?days=14'),
  });
  const queue = useQuery({
    queryKey: ['quantum', 'queue-history'],
    queryFn: async () => {
      const list = await api<{ backends: Backend[] }>('/api/v1/backends');
      return Promise.all(
        list.backends
          .slice(0, 20)
          .map((b) => api<BackendHistory>(`/api/v1/backends/${encodeURIComponent(b.name)}?hours=24`)),
      );
    },
  });
  const perMinute = useMemo(
    () => (jobs.data?.series ?? []).map((b) => [b.at / 1000, b.completed] as [number, number]),
    [jobs.data],
  );
  const perDay = useMemo(
    () => (uploads.data?.series ?? []).map((d) => [Date.parse(d.day) / 1000, d.bytes] as [number, number]),
    [uploads.data],
  );
  const queueTotal = useMemo(() => {
    const sums = new Map<number, number>();
    for (const b of queue.data ?? [])
      for (const h of b.history) {
        const t = Math.floor(Date.parse(h.at) / 600_000) * 600;
        sums.set(t, (sums.get(t) ?? 0) + (h.queue_length ?? 0));
      }
    return [...sums].sort((a, b) => a[0] - b[0]);
  }, [queue.data]);
  return (
    <>
      <Card title="Jobs completed per minute (last hour)">
        <QueryView q={jobs}>
          {() => (
            <TimeChart
              title="Jobs completed per minute"
              series={[{ label: 'jobs', points: perMinute }]}
              bars
            />
          )}
        </QueryView>
      </Card>
      <Card title="Bytes uploaded per day">
        <QueryView q={uploads}>
          {() => (
            <TimeChart title="Bytes uploaded per day" series={[{ label: 'bytes', points: perDay }]} bars />
          )}
        </QueryView>
      </Card>
      <Card title="Tracker queue total over time">
        <QueryView q={queue}>
          {() => (
            <TimeChart
              title="Jobs queued at all backends"
              series={[{ label: 'queued', points: queueTotal }]}
            />
          )}
        </QueryView>
      </Card>
    </>
  );
}

function Feed() {
  const { events } = useLive();
  const [filter, setFilter] = useState('qlab/#');
  const valid = /^qlab(\/[^/#+]+|\/\+)*(\/#)?$/.test(filter);
  const shown = valid ? events.filter((e) => topicMatches(filter, topicOf(e))).slice(0, 50) : [];
  return (
    <Card title="Live events" wide>
      <label htmlFor="topic-filter">Topic filter</label>{' '}
      <input
        id="topic-filter"
        value={filter}
        onChange={(e) => setFilter(e.target.value)}
        aria-invalid={!valid}
        placeholder="qlab/job-worker/#"
      />
      {!valid && <p className="warn">An MQTT filter under qlab/, e.g. qlab/job-worker/#</p>}
      {shown.length === 0 ? (
        <p className="empty">No events yet: they appear here as they happen.</p>
      ) : (
        <table className="feed">
          <thead>
            <tr>
              <th scope="col">time</th>
              <th scope="col">topic</th>
              <th scope="col">subject</th>
            </tr>
          </thead>
          <tbody>
            {shown.map((e) => (
              <tr key={e.id}>
                <td>{when(e.time)}</td>
                <td>
                  <code>{topicOf(e)}</code>
                </td>
                <td>{e.subject}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Card>
  );
}

export function Overview() {
  return (
    <>
      <h1>Overview</h1>
      <div className="grid">
        <Health />
        <Counts />
        <Charts />
        <Feed />
      </div>
    </>
  );
}
