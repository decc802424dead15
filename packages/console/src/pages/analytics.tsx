import { keepPreviousData, useMutation, useQuery } from '@tanstack/react-query';
import { type FormEvent, useMemo, useState } from 'react';
import { Link } from 'wouter';
import { Card, ErrorBox, Pager, QueryView } from '../components/states';
import { TimeChart } from '../components/time-chart';
import { api, download, query } from '../lib/api';
import { count, when } from '../lib/format';

const DOMAINS = ['test', 'generator', 'benchmark'] as const;

type Row = Record<string, unknown>;
interface Performance {
  metric: string;
  daily: Row[];
}

/** Which list a domain's records are in: runs, or tasks for the generator. */
const recordsOf = (d: string) => (d === 'generator' ? 'tasks' : 'runs');
const idOf = (r: Row) => String(r.run_id ?? r.task_id ?? r.id ?? '');

function Table({ rows, columns }: { rows: Row[]; columns: string[] }) {
  return (
    <table>
      <thead>
        <tr>
          {columns.map((c) => (
            <th key={c} scope="col">
              {c.replaceAll('_', ' ')}
            </th>
          ))}
        </tr>
      </thead>
      <tbody>
        {rows.map((r, i) => (
          <tr key={idOf(r) || i}>
            {columns.map((c) => (
              <td key={c}>{typeof r[c] === 'number' ? count(r[c]) : String(r[c] ?? '—')}</td>
            ))}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function RecordDetail({ domain, id }: { domain: string; id: string }) {
  const record = useQuery({
    queryKey: ['analytics', domain, 'record', id],
    queryFn: () => api<Row>(`/api/db/${domain}/${recordsOf(domain).slice(0, -1)}/${encodeURIComponent(id)}`),
  });
  return (
    <Card title={`Record ${id}`} wide>
      <QueryView q={record}>{(r) => <pre>{JSON.stringify(r, null, 2)}</pre>}</QueryView>
    </Card>
  );
}

export function Analytics({ domain = 'test' }: { domain?: string }) {
  const known = (DOMAINS as readonly string[]).includes(domain);
  const [term, setTerm] = useState('');
  const [submitted, setSubmitted] = useState('');
  const [offset, setOffset] = useState(0);
  const [open, setOpen] = useState<string | null>(null);
  const models = useQuery({
    queryKey: ['analytics', domain, 'models'],
    queryFn: () => api<{ models: Row[] }>(`/api/db/${domain}/models/stats`),
    enabled: known,
  });
  const hardware = useQuery({
    queryKey: ['analytics', domain, 'hardware'],
    queryFn: () => api<{ hardware: Row[] }>(`/api/db/${domain}/hardware/stats`),
    enabled: known,
  });
  const top = (models.data?.models ?? []).slice(0, 5).map((m) => String(m.model));
  const perModel = useQuery({
    queryKey: ['analytics', domain, 'performance', top.join(',')],
    enabled: known && models.isSuccess,
    queryFn: async () => {
      const all = await api<Performance>(`/api/db/${domain}/performance?days=30`);
      const each = await Promise.all(
        top.map((m) => api<Performance>(`/api/db/${domain}/performance${query({ days: 30, model: m })}`)),
      );
      return { all, each };
    },
  });
  const records = useQuery({
    queryKey: ['analytics', domain, 'search', submitted, offset],
    enabled: known,
    placeholderData: keepPreviousData,
    queryFn: () =>
      api<{ results: Row[]; total: number }>(`/api/db/${domain}/search`, {
        method: 'POST',
        json: { ...(submitted ? { query: submitted } : {}), limit: 20, offset },
      }),
  });
  const exporter = useMutation({
    mutationFn: (format: 'csv' | 'parquet') =>
      download(
        `/api/db/${domain}/export${query({ format })}`,
        `${domain}-${recordsOf(domain)}.${format}`,
        'POST',
      ),
  });
  const metric = perModel.data?.all.metric ?? 'value';
  const series = useMemo(
    () =>
      (perModel.data?.each ?? []).map((p, i) => ({
        label: top[i] ?? '',
        points: p.daily.map(
          (d) => [Date.parse(String(d.day)) / 1000, Number(d[`avg_${p.metric}`] ?? 0)] as [number, number],
        ),
      })),
    [perModel.data, top],
  );
  const successSeries = useMemo(
    () => [
      {
        label: 'success rate',
        points: (perModel.data?.all.daily ?? []).map(
          (d) => [Date.parse(String(d.day)) / 1000, Number(d.success_rate ?? 0)] as [number, number],
        ),
      },
    ],
    [perModel.data],
  );
  if (!known)
    return (
      <>
        <h1>Analytics</h1>
        <p role="alert">There is no analytics domain {domain}.</p>
      </>
    );
  const found = records.data?.results ?? [];
  const search = (e: FormEvent) => {
    e.preventDefault();
    setOffset(0);
    setSubmitted(term.trim());
  };
  return (
    <>
      <h1>Analytics: {domain}</h1>
      <nav aria-label="Domains" className="tabs">
        {DOMAINS.map((d) => (
          <Link key={d} href={`/analytics/${d}`} aria-current={d === domain ? 'page' : undefined}>
            {d}
          </Link>
        ))}
      </nav>
      <div className="grid">
        <Card title="Models" wide>
          <QueryView q={models} isEmpty={(d) => d.models.length === 0} empty="No records in this domain yet.">
            {(d) => (
              <Table
                rows={d.models}
                columns={[
                  'model',
                  'total',
                  'succeeded',
                  'failed',
                  'success_rate',
                  `avg_${metric}`,
                  `p95_${metric}`,
                ]}
              />
            )}
          </QueryView>
        </Card>
        <Card title={`Average ${metric} per day, per model`}>
          <QueryView q={perModel}>
            {() => <TimeChart title={`Average ${metric} per model`} series={series} />}
          </QueryView>
        </Card>
        <Card title="Success rate per day">
          <QueryView q={perModel}>
            {() => <TimeChart title="Success rate per day" series={successSeries} />}
          </QueryView>
        </Card>
        <Card title="Hardware">
          <QueryView q={hardware} isEmpty={(d) => (d.hardware ?? []).length === 0} empty="No hardware yet.">
            {(d) => (
              <Table rows={d.hardware} columns={['hardware', 'total', 'success_rate', `avg_${metric}`]} />
            )}
          </QueryView>
        </Card>
        <Card title="Records" wide>
          <form onSubmit={search} className="filters">
            <label htmlFor="an-search">Search</label>
            <input id="an-search" type="search" value={term} onChange={(e) => setTerm(e.target.value)} />
            <button type="submit">Search</button>
            <button type="button" onClick={() => exporter.mutate('csv')}>
              Export CSV
            </button>
            <button type="button" onClick={() => exporter.mutate('parquet')}>
              Export Parquet
            </button>
          </form>
          {exporter.isError && <ErrorBox error={exporter.error} />}
          <QueryView q={records} isEmpty={() => found.length === 0} empty="No records match.">
            {(d) => (
              <>
                <table>
                  <thead>
                    <tr>
                      <th scope="col">id</th>
                      <th scope="col">model</th>
                      <th scope="col">hardware</th>
                      <th scope="col">status</th>
                      <th scope="col">{metric}</th>
                      <th scope="col">created</th>
                    </tr>
                  </thead>
                  <tbody>
                    {found.map((r) => (
                      <tr key={idOf(r)}>
                        <td>
                          <button type="button" className="link" onClick={() => setOpen(idOf(r))}>
                            <code>{idOf(r).slice(0, 8)}</code>
                          </button>
                        </td>
                        <td>{String(r.model ?? '—')}</td>
                        <td>{String(r.hardware ?? '—')}</td>
                        <td>{String(r.status ?? '—')}</td>
                        <td>{count(r[metric])}</td>
                        <td>{when(r.created_at as string)}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
                <Pager offset={offset} limit={20} total={d.total} onChange={setOffset} />
              </>
            )}
          </QueryView>
        </Card>
        {open && <RecordDetail domain={domain} id={open} />}
      </div>
    </>
  );
}
