import { keepPreviousData, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { zipSync } from 'fflate';
import { type DragEvent, type FormEvent, useState } from 'react';
import { Link } from 'wouter';
import { Card, ErrorBox, Pager, QueryView } from '../components/states';
import { api, query } from '../lib/api';
import { useAuth } from '../lib/auth';
import { bytes, when } from '../lib/format';

export interface Calibration {
  id: number;
  hashID: string;
  notes: string;
  created_at: string;
  filename: string;
  size: number;
  sha256: string;
}

const LIMIT = 20;

/**
 * The archive to send: a single .zip as it is, anything else zipped here (fflate, in memory: a
 * calibration is a few files; big data goes through Uploads, which streams).
 */
async function archiveOf(files: File[]): Promise<File> {
  if (files.length === 1 && /\.zip$/i.test(files[0]!.name)) return files[0]!;
  const entries: Record<string, Uint8Array> = {};
  for (const f of files) entries[f.webkitRelativePath || f.name] = new Uint8Array(await f.arrayBuffer());
  const zipped = zipSync(entries, { level: 6 });
  return new File([zipped as BlobPart], 'calibration.zip', { type: 'application/zip' });
}

function UploadForm() {
  const client = useQueryClient();
  const [hashID, setHashID] = useState('');
  const [notes, setNotes] = useState('');
  const [files, setFiles] = useState<File[]>([]);
  const [over, setOver] = useState(false);
  const upload = useMutation({
    mutationFn: async () => {
      const form = new FormData();
      form.set('hashID', hashID.trim());
      form.set('notes', notes);
      form.set('archive', await archiveOf(files));
      return api<{ id: number }>('/api/store/calibrations/upload', { method: 'POST', body: form });
    },
    onSuccess: () => {
      setFiles([]);
      setHashID('');
      setNotes('');
      client.invalidateQueries({ queryKey: ['calibrations'] });
    },
  });
  const drop = (e: DragEvent) => {
    e.preventDefault();
    setOver(false);
    setFiles([...e.dataTransfer.files]);
  };
  const submit = (e: FormEvent) => {
    e.preventDefault();
    upload.mutate();
  };
  return (
    <Card title="Upload a calibration">
      <form onSubmit={submit} className="stack">
        <label htmlFor="cal-hash">hashID</label>
        <input
          id="cal-hash"
          required
          maxLength={256}
          value={hashID}
          onChange={(e) => setHashID(e.target.value)}
        />
        <label htmlFor="cal-notes">Notes</label>
        <textarea id="cal-notes" rows={2} value={notes} onChange={(e) => setNotes(e.target.value)} />
        <label htmlFor="cal-files">Files (a zip is sent as it is; other files are zipped here)</label>
        {/* biome-ignore lint/a11y/noStaticElementInteractions: dropping is a shortcut; the file input inside is the keyboard way */}
        <div
          className={over ? 'drop over' : 'drop'}
          onDragOver={(e) => {
            e.preventDefault();
            setOver(true);
          }}
          onDragLeave={() => setOver(false)}
          onDrop={drop}
        >
          <input
            id="cal-files"
            type="file"
            multiple
            onChange={(e) => setFiles([...(e.target.files ?? [])])}
          />
          <span>or drop files here</span>
        </div>
        {files.length > 0 && (
          <p>
            {files.length} file(s), {bytes(files.reduce((n, f) => n + f.size, 0))}
          </p>
        )}
        <button type="submit" disabled={upload.isPending || files.length === 0 || hashID.trim() === ''}>
          {upload.isPending ? 'Uploading…' : 'Upload'}
        </button>
        {upload.isError && <ErrorBox error={upload.error} />}
        {upload.isSuccess && (
          <p role="status">
            Stored as <Link href={`/calibrations/${upload.data.id}`}>calibration {upload.data.id}</Link>.
          </p>
        )}
      </form>
    </Card>
  );
}

export function Calibrations() {
  const { can } = useAuth();
  const [search, setSearch] = useState('');
  const [offset, setOffset] = useState(0);
  const term = search.trim();
  // A search asks the gateway's cross-service search (hashID exact, or hashID/notes among the newest).
  const list = useQuery({
    queryKey: ['calibrations', 'list', term, offset],
    queryFn: async () => {
      if (!term)
        return api<{ items: Calibration[]; total: number }>(
          `/api/store/calibrations/list${query({ limit: LIMIT, offset })}`,
        );
      const found = await api<{ results: { calibrations: Calibration[] } }>(
        `/api/db/search${query({ query: term, limit: 100 })}`,
        { method: 'POST' },
      );
      return { items: found.results.calibrations ?? [], total: found.results.calibrations?.length ?? 0 };
    },
    placeholderData: keepPreviousData,
  });
  return (
    <>
      <h1>Calibrations</h1>
      <div className="grid">
        <Card title="Stored calibrations" wide>
          <label htmlFor="cal-search">Search by hashID or notes</label>{' '}
          <input
            id="cal-search"
            type="search"
            value={search}
            onChange={(e) => {
              setSearch(e.target.value);
              setOffset(0);
            }}
          />
          <QueryView q={list} isEmpty={(d) => d.items.length === 0} empty="No calibrations match.">
            {(d) => (
              <>
                <table>
                  <thead>
                    <tr>
                      <th scope="col">id</th>
                      <th scope="col">hashID</th>
                      <th scope="col">notes</th>
                      <th scope="col">size</th>
                      <th scope="col">stored</th>
                    </tr>
                  </thead>
                  <tbody>
                    {d.items.map((c) => (
                      <tr key={c.id}>
                        <td>
                          <Link href={`/calibrations/${c.id}`}>{c.id}</Link>
                        </td>
                        <td>
                          <code>{c.hashID}</code>
                        </td>
                        <td>{c.notes}</td>
                        <td>{bytes(c.size)}</td>
                        <td>{when(c.created_at)}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
                {!term && <Pager offset={offset} limit={LIMIT} total={d.total} onChange={setOffset} />}
              </>
            )}
          </QueryView>
        </Card>
        {can('write') && <UploadForm />}
      </div>
    </>
  );
}
