import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { Link } from 'wouter';
import { Card, ErrorBox, Facts, QueryView } from '../components/states';
import { api, download, query } from '../lib/api';
import { useAuth } from '../lib/auth';
import { bytes, when } from '../lib/format';
import type { Calibration } from './calibrations';

interface Entry {
  name: string;
  size: number;
  compressed_size: number;
  modified: string | null;
  directory: boolean;
}
interface Result extends Calibration {
  name: string;
  run_id: string | null;
}
interface BestRun {
  id: number;
  calibration_hash_id: string;
  run_id: string;
  created_at: string;
}

function Results({ hashID }: { hashID: string }) {
  const { can } = useAuth();
  const client = useQueryClient();
  const results = useQuery({
    queryKey: ['calibrations', 'results', hashID],
    queryFn: () => api<{ items: Result[] }>(`/api/store/results/list${query({ hashID, limit: 100 })}`),
  });
  const best = useQuery({
    queryKey: ['calibrations', 'bestruns'],
    queryFn: () => api<{ items: BestRun[] }>('/api/store/bestruns/list?limit=100'),
  });
  const bestRun = best.data?.items.find((b) => b.calibration_hash_id === hashID)?.run_id;
  const setBest = useMutation({
    mutationFn: (runID: string) =>
      api('/api/store/bestruns/set', { method: 'POST', json: { calibrationHashID: hashID, runID } }),
    onSuccess: () => client.invalidateQueries({ queryKey: ['calibrations', 'bestruns'] }),
  });
  return (
    <Card title={`Results of ${hashID}`} wide>
      <QueryView
        q={results}
        isEmpty={(d) => d.items.length === 0}
        empty="No results for this calibration yet."
      >
        {(d) => (
          <table>
            <thead>
              <tr>
                <th scope="col">name</th>
                <th scope="col">run id</th>
                <th scope="col">size</th>
                <th scope="col">stored</th>
                <th scope="col">best run</th>
              </tr>
            </thead>
            <tbody>
              {d.items.map((r) => {
                const run = r.run_id ?? r.name;
                const isBest = bestRun !== undefined && bestRun === run;
                return (
                  <tr key={r.id} className={isBest ? 'best' : undefined}>
                    <td>{r.name}</td>
                    <td>
                      <code>{r.run_id ?? '—'}</code>
                    </td>
                    <td>{bytes(r.size)}</td>
                    <td>{when(r.created_at)}</td>
                    <td>
                      {isBest ? (
                        <strong>best run</strong>
                      ) : can('write') ? (
                        <button
                          type="button"
                          disabled={setBest.isPending}
                          onClick={() => setBest.mutate(run)}
                        >
                          Set as best run
                        </button>
                      ) : null}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        )}
      </QueryView>
      {setBest.isError && <ErrorBox error={setBest.error} />}
    </Card>
  );
}

export function CalibrationDetail({ id }: { id: string }) {
  const item = useQuery({
    queryKey: ['calibrations', 'item', id],
    queryFn: () => api<Calibration>(`/api/store/calibrations/${encodeURIComponent(id)}`),
  });
  const entries = useQuery({
    queryKey: ['calibrations', 'entries', id],
    queryFn: () =>
      api<{ entries: Entry[]; total: number }>(`/api/store/calibrations/${encodeURIComponent(id)}/entries`),
  });
  const save = useMutation({
    mutationFn: (c: Calibration) =>
      download(`/api/store/calibrations/${c.id}/archive`, c.filename || `${c.hashID}.zip`),
  });
  return (
    <>
      <p>
        <Link href="/calibrations">← Calibrations</Link>
      </p>
      <QueryView q={item}>
        {(c) => (
          <>
            <h1>
              Calibration <code>{c.hashID}</code>
            </h1>
            <div className="grid">
              <Card title="Details">
                <Facts
                  items={[
                    ['id', c.id],
                    ['hashID', <code key="h">{c.hashID}</code>],
                    ['notes', c.notes || '—'],
                    ['file', c.filename],
                    ['size', bytes(c.size)],
                    [
                      'sha256',
                      <code key="s" className="hash">
                        {c.sha256}
                      </code>,
                    ],
                    ['stored', when(c.created_at)],
                  ]}
                />
                <button type="button" onClick={() => save.mutate(c)} disabled={save.isPending}>
                  Download archive
                </button>
                {save.isError && <ErrorBox error={save.error} />}
              </Card>
              <Card title="Files in the archive">
                <QueryView q={entries} isEmpty={(d) => d.entries.length === 0} empty="The archive is empty.">
                  {(d) => (
                    <>
                      <table>
                        <thead>
                          <tr>
                            <th scope="col">name</th>
                            <th scope="col">size</th>
                            <th scope="col">modified</th>
                          </tr>
                        </thead>
                        <tbody>
                          {d.entries.map((e) => (
                            <tr key={e.name}>
                              <td>
                                <code>{e.name}</code>
                              </td>
                              <td>{e.directory ? 'folder' : bytes(e.size)}</td>
                              <td>{when(e.modified)}</td>
                            </tr>
                          ))}
                        </tbody>
                      </table>
                      {d.total > d.entries.length && (
                        <p className="muted">
                          {d.entries.length} of {d.total} entries shown.
                        </p>
                      )}
                    </>
                  )}
                </QueryView>
              </Card>
              <Results hashID={c.hashID} />
            </div>
          </>
        )}
      </QueryView>
    </>
  );
}
