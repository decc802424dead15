import '@uppy/core/css/style.min.css';
import '@uppy/dashboard/css/style.min.css';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import Uppy from '@uppy/core';
import Dashboard from '@uppy/dashboard';
import Tus from '@uppy/tus';
import { useEffect, useRef } from 'react';
import { Card, ErrorBox, QueryView } from '../components/states';
import { api, storedKey } from '../lib/api';
import { useAuth } from '../lib/auth';
import { bytes, when } from '../lib/format';

interface Upload {
  id: string;
  protocol: string;
  status: string;
  key_id: string;
  clientFilename: string | null;
  offset: number;
  length: number | null;
  created_at: string;
  completed_at: string | null;
}

/**
 * Uppy's Dashboard with its tus uploader, through the gateway: resumable (an interrupted upload
 * goes on from the server's offset), pause/resume, retries with backoff. The key goes as
 * X-API-Key on every tus request, as everywhere else.
 */
function UppyDashboard() {
  const box = useRef<HTMLDivElement>(null);
  const client = useQueryClient();
  useEffect(() => {
    const uppy = new Uppy({ autoProceed: false })
      .use(Dashboard, {
        target: box.current!,
        inline: true,
        height: 360,
        width: '100%',
        proudlyDisplayPoweredByUppy: false,
      })
      .use(Tus, {
        endpoint: '/api/uploads/files',
        chunkSize: 8 * 1024 * 1024,
        retryDelays: [0, 1000, 3000, 5000, 10000],
        removeFingerprintOnSuccess: true,
        headers: () => ({ 'X-API-Key': storedKey.get() ?? '' }),
      });
    uppy.on('upload-success', () => client.invalidateQueries({ queryKey: ['uploads'] }));
    return () => uppy.destroy();
  }, [client]);
  return <div ref={box} className="uppy-box" />;
}

export function Uploads() {
  const { can, me } = useAuth();
  const client = useQueryClient();
  // An admin sees every key's name; anyone else sees which uploads are their own.
  const keys = useQuery({
    queryKey: ['uploads', 'key-names'],
    enabled: can('admin'),
    queryFn: () => api<{ keys: { id: string; name: string }[] }>('/api/keys'),
  });
  // Behind the gateway an upload's owner is `gw:<key id>` (chunked-upload's README).
  const owner = (id: string) =>
    id === `gw:${me?.id}`
      ? `${me?.name} (you)`
      : (keys.data?.keys.find((k) => `gw:${k.id}` === id)?.name ?? id);
  const list = useQuery({
    queryKey: ['uploads', 'list'],
    queryFn: () => api<{ items: Upload[]; total: number }>('/api/uploads/uploads?limit=100'),
    refetchInterval: 5000,
  });
  const remove = useMutation({
    mutationFn: (u: Upload) =>
      api(`/api/uploads/files/${encodeURIComponent(u.id)}`, {
        method: 'DELETE',
        headers: { 'Tus-Resumable': '1.0.0' },
      }),
    onSuccess: () => client.invalidateQueries({ queryKey: ['uploads'] }),
  });
  return (
    <>
      <h1>Uploads</h1>
      <div className="grid">
        {can('write') && (
          <Card title="Upload files (tus, resumable)" wide>
            <UppyDashboard />
          </Card>
        )}
        <Card title="Uploads" wide>
          <QueryView q={list} isEmpty={(d) => d.items.length === 0} empty="No uploads yet.">
            {(d) => (
              <table>
                <thead>
                  <tr>
                    <th scope="col">file</th>
                    <th scope="col">protocol</th>
                    <th scope="col">status</th>
                    <th scope="col">key</th>
                    <th scope="col">progress</th>
                    <th scope="col">size</th>
                    <th scope="col">started</th>
                    <th scope="col">
                      <span className="sr-only">actions</span>
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {d.items.map((u) => (
                    <tr key={u.id}>
                      <td>{u.clientFilename ?? u.id}</td>
                      <td>{u.protocol}</td>
                      <td>
                        <span className={`status ${u.status}`}>{u.status}</span>
                      </td>
                      <td>{owner(u.key_id)}</td>
                      <td>{u.length ? `${Math.floor((u.offset / u.length) * 100)}%` : '—'}</td>
                      <td>{bytes(u.length)}</td>
                      <td>{when(u.created_at)}</td>
                      <td>
                        {can('write') && u.protocol === 'tus' && (
                          <button
                            type="button"
                            aria-label={`Delete ${u.clientFilename ?? u.id}`}
                            onClick={() => remove.mutate(u)}
                            disabled={remove.isPending}
                          >
                            Delete
                          </button>
                        )}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </QueryView>
          {remove.isError && <ErrorBox error={remove.error} />}
        </Card>
      </div>
    </>
  );
}
