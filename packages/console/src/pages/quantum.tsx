import { keepPreviousData, useQuery } from '@tanstack/react-query';
import { useVirtualizer } from '@tanstack/react-virtual';
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { Card, Facts, Pager, QueryView } from '../components/states';
import { TimeChart } from '../components/time-chart';
import { api, query } from '../lib/api';
import { count, when } from '../lib/format';
import { useTrackerChannel } from '../lib/live';

interface Backend {
  name: string;
  provider: string;
  status: string;
  qubits: number | null;
  queue_length: number | null;
  is_simulator?: boolean;
}
interface History {
  name: string;
  history: { at: string; queue_length: number | null }[];
}
interface TrackerJob {
  id?: string;
  job_id?: string;
  provider: string;
  backend: string;
  status: string;
  created_at: string;
}

/** GET /api/v1/analytics/cost-analysis: billed quantum time priced, by backend and by day. */
interface CostAnalysis {
  days: number;
  currency: string;
  price_per_quantum_second: number;
  total_quantum_seconds: number;
  total_cost: number;
  by_backend: { provider: string; backend: string; quantum_seconds: number | null; cost: number }[];
  by_day: { date: string; quantum_seconds: number | null; cost: number }[];
  billing_pending_jobs?: number;
}

function Cost({ analysis: a }: { analysis: CostAnalysis }) {
  // TRACKER_CURRENCY may be any short name ("credits"), not only an ISO 4217 code.
  const money = (n: number) => {
    try {
      return n.toLocaleString(undefined, { style: 'currency', currency: a.currency });
    } catch {
      return `${n.toLocaleString(undefined, { maximumFractionDigits: 2 })} ${a.currency}`;
    }
  };
  const perDay = useMemo(
    () => [
      { label: 'cost', points: a.by_day.map((d) => [Date.parse(d.date) / 1000, d.cost] as [number, number]) },
    ],
    [a.by_day],
  );
  return (
    <>
      <Facts
        items={[
          [`cost, last ${a.days} days`, money(a.total_cost)],
          ['billed quantum time', `${count(a.total_quantum_seconds)} s`],
          ['price', `${money(a.price_per_quantum_second)} per quantum second`],
          ['jobs not yet billed', count(a.billing_pending_jobs ?? 0)],
        ]}
      />
      <table>
        <thead>
          <tr>
            <th scope="col">backend</th>
            <th scope="col">provider</th>
            <th scope="col">quantum s</th>
            <th scope="col">cost</th>
          </tr>
        </thead>
        <tbody>
          {a.by_backend.map((b) => (
            <tr key={`${b.provider}/${b.backend}`}>
              <td>{b.backend}</td>
              <td>{b.provider}</td>
              <td>{count(b.quantum_seconds)}</td>
              <td>{money(b.cost)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <TimeChart title="Cost per day" bars series={perDay} />
    </>
  );
}

/**
 * Up to 500 rows a page from the server, filtered there by status and backend, drawn
 * virtualized: the DOM holds only the rows in view, whatever the total.
 */
function JobsTable({
  statuses,
  backends,
  onListed,
}: {
  statuses: string[];
  backends: string[];
  onListed: () => void;
}) {
  const [status, setStatus] = useState('');
  const [backend, setBackend] = useState('');
  const [offset, setOffset] = useState(0);
  const jobs = useQuery({
    queryKey: ['quantum', 'jobs', status, backend, offset],
    queryFn: () =>
      api<{ jobs: TrackerJob[]; total: number }>(
        `/api/v1/jobs${query({ status, backend, limit: 500, offset })}`,
      ),
    placeholderData: keepPreviousData,
  });
  const listed = jobs.isFetched;
  useEffect(() => {
    if (listed) onListed();
  }, [listed, onListed]);
  const scroller = useRef<HTMLElement>(null);
  const rows = jobs.data?.jobs ?? [];
  const virtual = useVirtualizer({
    count: rows.length,
    getScrollElement: () => scroller.current,
    estimateSize: () => 32,
    overscan: 10,
  });
  return (
    <Card title="Jobs" wide>
      <div className="filters">
        <label>
          Status{' '}
          <select
            value={status}
            onChange={(e) => {
              setStatus(e.target.value);
              setOffset(0);
            }}
          >
            <option value="">any</option>
            {statuses.map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </label>{' '}
        <label>
          Backend{' '}
          <select
            value={backend}
            onChange={(e) => {
              setBackend(e.target.value);
              setOffset(0);
            }}
          >
            <option value="">any</option>
            {backends.map((b) => (
              <option key={b}>{b}</option>
            ))}
          </select>
        </label>
      </div>
      <QueryView q={jobs} isEmpty={(d) => d.jobs.length === 0} empty="No jobs recorded.">
        {(d) => (
          <>
            <div className="vhead" aria-hidden="true">
              <span>job</span>
              <span>provider</span>
              <span>backend</span>
              <span>status</span>
              <span>created</span>
            </div>
            {/* biome-ignore lint/a11y/noNoninteractiveTabindex: a scrolling region must be reachable by keyboard (WCAG 2.1.1; axe scrollable-region-focusable) */}
            <section ref={scroller} className="vscroll" tabIndex={0} aria-label="tracker jobs">
              <ul style={{ height: virtual.getTotalSize(), position: 'relative' }}>
                {virtual.getVirtualItems().map((v) => {
                  const j = rows[v.index]!;
                  return (
                    <li
                      key={v.key}
                      className="vrow"
                      style={{ transform: `translateY(${v.start}px)`, height: v.size }}
                    >
                      <span>
                        <code>{j.job_id ?? j.id}</code>
                      </span>
                      <span>{j.provider}</span>
                      <span>{j.backend}</span>
                      <span>{j.status}</span>
                      <span>{when(j.created_at)}</span>
                    </li>
                  );
                })}
              </ul>
            </section>
            <Pager offset={offset} limit={500} total={d.total} onChange={setOffset} />
          </>
        )}
      </QueryView>
    </Card>
  );
}

export function Quantum() {
  // The tracker's queue and jobs sockets, beside the MQTT feed: backends and jobs refetch on change.
  const queueLive = useTrackerChannel('queue', ['quantum']);
  useTrackerChannel('jobs', ['quantum', 'jobs']);
  // The tracker answers one query at a time on SQLite: the jobs list goes first, and the
  // whole-table summaries below (stats, trends, cost, history) ask once it has answered.
  const [listed, setListed] = useState(false);
  const onListed = useCallback(() => setListed(true), []);
  const status = useQuery({
    queryKey: ['quantum', 'status'],
    queryFn: () =>
      api<{
        status: string;
        providers: { name: string; last_sync_at?: string; error?: string }[];
        notice?: string;
      }>('/api/v1/dashboard/system-status'),
  });
  const backends = useQuery({
    queryKey: ['quantum', 'backends'],
    queryFn: () => api<{ backends: Backend[]; notice?: string }>('/api/v1/backends'),
  });
  const history = useQuery({
    queryKey: ['quantum', 'history', backends.data?.backends.map((b) => b.name).join(',')],
    enabled: listed && Boolean(backends.data?.backends.length),
    queryFn: () =>
      Promise.all(
        backends
          .data!.backends.slice(0, 8)
          .map((b) => api<History>(`/api/v1/backends/${encodeURIComponent(b.name)}?hours=24`)),
      ),
  });
  const byStatus = useQuery({
    queryKey: ['quantum', 'jobs-stats'],
    enabled: listed,
    queryFn: () => api<{ by_status?: Record<string, number> }>('/api/v1/jobs/stats/overview'),
  });
  const trends = useQuery({
    queryKey: ['quantum', 'trends'],
    enabled: listed,
    queryFn: () => api<{ trends?: { date: string; total: number }[] }>('/api/v1/jobs/trends/daily'),
  });
  const cost = useQuery({
    queryKey: ['quantum', 'cost'],
    enabled: listed,
    queryFn: () => api<CostAnalysis>('/api/v1/analytics/cost-analysis'),
  });
  const series = useMemo(
    () =>
      (history.data ?? []).map((b) => ({
        label: b.name,
        points: b.history.map((h) => [Date.parse(h.at) / 1000, h.queue_length ?? 0] as [number, number]),
      })),
    [history.data],
  );
  return (
    <>
      <h1>Quantum</h1>
      <p className="muted">
        Tracker queue feed: <span data-testid="tracker-live">{queueLive}</span>
      </p>
      <QueryView q={status}>
        {(s) =>
          s.notice ? (
            <p role="status" className="warn">
              {s.notice}
            </p>
          ) : (
            <ul className="health">
              {s.providers.map((p) => (
                <li key={p.name} className={p.error ? 'down' : 'ok'}>
                  {p.name}: {p.error ?? `synced ${when(p.last_sync_at)}`}
                </li>
              ))}
            </ul>
          )
        }
      </QueryView>
      <div className="grid">
        <Card title="Backends" wide>
          <QueryView q={backends} isEmpty={(d) => d.backends.length === 0} empty="No backends recorded.">
            {(d) => (
              <table>
                <thead>
                  <tr>
                    <th scope="col">backend</th>
                    <th scope="col">provider</th>
                    <th scope="col">status</th>
                    <th scope="col">qubits</th>
                    <th scope="col">queue</th>
                  </tr>
                </thead>
                <tbody>
                  {d.backends.map((b) => (
                    <tr key={`${b.provider}/${b.name}`}>
                      <td>{b.name}</td>
                      <td>{b.provider}</td>
                      <td>{b.status}</td>
                      <td>{count(b.qubits)}</td>
                      <td>{count(b.queue_length)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </QueryView>
        </Card>
        <Card title="Queue length over time (24 h)" wide>
          <TimeChart title="Queue length per backend" series={series} />
        </Card>
        <Card title="Jobs by status">
          <QueryView q={byStatus}>
            {(d) => (
              <dl className="facts">
                {Object.entries(d.by_status ?? {}).map(([k, v]) => (
                  <div key={k}>
                    <dt>{k}</dt>
                    <dd>{count(v)}</dd>
                  </div>
                ))}
              </dl>
            )}
          </QueryView>
        </Card>
        <Card title="Daily trend">
          <QueryView q={trends}>
            {(d) => (
              <TimeChart
                title="Jobs per day"
                bars
                series={[
                  {
                    label: 'jobs',
                    points: (d.trends ?? []).map((t) => [Date.parse(t.date) / 1000, t.total]),
                  },
                ]}
              />
            )}
          </QueryView>
        </Card>
        <Card title="Cost analysis" wide>
          <QueryView q={cost}>{(d) => <Cost analysis={d} />}</QueryView>
        </Card>
        <JobsTable
          statuses={Object.keys(byStatus.data?.by_status ?? {})}
          backends={[...new Set((backends.data?.backends ?? []).map((b) => b.name))]}
          onListed={onListed}
        />
      </div>
    </>
  );
}
