import { type FormEvent, useState } from 'react';
import { ErrorBox } from '../components/states';
import { useAuth } from '../lib/auth';

/** The key goes to GET /api/keys/me first; only a key the gateway knows is kept (sessionStorage). */
export function SignIn() {
  const { signIn, notice } = useAuth();
  const [key, setKey] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await signIn(key.trim());
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main id="main" className="sign-in">
      <h1>qlab console</h1>
      <p>Sign in with a gateway API key. It stays in this tab only and is sent as X-API-Key.</p>
      {notice && <p role="status">{notice}</p>}
      <form onSubmit={submit}>
        <label htmlFor="api-key">API key</label>
        <input
          id="api-key"
          type="password"
          autoComplete="off"
          spellCheck={false}
          required
          value={key}
          onChange={(e) => setKey(e.target.value)}
        />
        <button type="submit" disabled={busy || key.trim() === ''}>
          {busy ? 'Checking…' : 'Sign in'}
        </button>
      </form>
      {error ? <ErrorBox error={error} /> : null}
      <p className="muted">
        <code>pnpm start</code> writes an admin key to <code>data/gateway/bootstrap-api-key</code>.
      </p>
    </main>
  );
}
