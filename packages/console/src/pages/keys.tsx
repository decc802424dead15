import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { type FormEvent, useState } from 'react';
import { Card, ErrorBox, QueryView } from '../components/states';
import { api } from '../lib/api';
import { type Me, type Scope, useAuth } from '../lib/auth';
import { when } from '../lib/format';

/** A key as GET /api/keys lists it: the fields /api/keys/me gives, and when it was revoked. */
interface KeyRow extends Me {
  revoked_at?: number | string | null;
}

const SCOPES: Scope[] = ['read', 'write', 'admin'];

function CreateKey() {
  const client = useQueryClient();
  const [name, setName] = useState('');
  const [scopes, setScopes] = useState<Scope[]>(['read']);
  const [copied, setCopied] = useState(false);
  const create = useMutation({
    mutationFn: () =>
      api<{ key: string; id: string }>('/api/keys', { method: 'POST', json: { name: name.trim(), scopes } }),
    onSuccess: () => {
      setName('');
      setCopied(false);
      client.invalidateQueries({ queryKey: ['keys'] });
    },
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    create.mutate();
  };
  return (
    <Card title="Create a key">
      <form onSubmit={submit} className="stack">
        <label htmlFor="key-name">Name</label>
        <input
          id="key-name"
          required
          maxLength={200}
          value={name}
          onChange={(e) => setName(e.target.value)}
        />
        <fieldset>
          <legend>Scopes</legend>
          {SCOPES.map((s) => (
            <label key={s} className="inline">
              <input
                type="checkbox"
                checked={scopes.includes(s)}
                onChange={(e) => setScopes(e.target.checked ? [...scopes, s] : scopes.filter((x) => x !== s))}
              />{' '}
              {s}
            </label>
          ))}
        </fieldset>
        <button type="submit" disabled={create.isPending || scopes.length === 0 || name.trim() === ''}>
          Create key
        </button>
        {create.isError && <ErrorBox error={create.error} />}
      </form>
      {create.isSuccess && (
        <div role="status" className="new-key">
          <p>The new key is shown once: store it now.</p>
          <code data-testid="new-key">{create.data.key}</code>{' '}
          <button
            type="button"
            onClick={() => navigator.clipboard.writeText(create.data.key).then(() => setCopied(true))}
          >
            {copied ? 'Copied' : 'Copy'}
          </button>
        </div>
      )}
    </Card>
  );
}

export function Keys() {
  const { can, me } = useAuth();
  const client = useQueryClient();
  const keys = useQuery({
    queryKey: ['keys'],
    queryFn: () => api<{ keys: KeyRow[] }>('/api/keys'),
    enabled: can('admin'),
  });
  const revoke = useMutation({
    mutationFn: (id: string) => api(`/api/keys/${id}`, { method: 'DELETE' }),
    onSuccess: () => client.invalidateQueries({ queryKey: ['keys'] }),
  });
  if (!can('admin'))
    return (
      <>
        <h1>Keys</h1>
        <p>Managing keys needs a key with the admin scope.</p>
      </>
    );
  return (
    <>
      <h1>Keys</h1>
      <div className="grid">
        <Card title="Keys" wide>
          <QueryView q={keys} isEmpty={(d) => d.keys.length === 0} empty="No keys.">
            {(d) => (
              <table>
                <thead>
                  <tr>
                    <th scope="col">name</th>
                    <th scope="col">prefix</th>
                    <th scope="col">scopes</th>
                    <th scope="col">created</th>
                    <th scope="col">last used</th>
                    <th scope="col">
                      <span className="sr-only">actions</span>
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {d.keys.map((k) => (
                    <tr key={k.id}>
                      <td>{k.name}</td>
                      <td>
                        <code>{k.prefix}…</code>
                      </td>
                      <td>{k.scopes.join(', ')}</td>
                      <td>{when(k.created_at)}</td>
                      <td>{when(k.last_used_at)}</td>
                      <td>
                        {k.revoked_at ? (
                          'revoked'
                        ) : k.id === me?.id ? (
                          'this key'
                        ) : (
                          <button
                            type="button"
                            aria-label={`Revoke ${k.name}`}
                            onClick={() => revoke.mutate(k.id)}
                            disabled={revoke.isPending}
                          >
                            Revoke
                          </button>
                        )}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </QueryView>
          {revoke.isError && <ErrorBox error={revoke.error} />}
        </Card>
        <CreateKey />
      </div>
    </>
  );
}
