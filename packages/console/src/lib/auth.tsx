import { useQueryClient } from '@tanstack/react-query';
import { createContext, type ReactNode, useCallback, useContext, useEffect, useState } from 'react';
import { api, storedKey, whenUnauthorized } from './api';

export type Scope = 'read' | 'write' | 'admin';

/** GET /api/keys/me: the signed-in key's own record (never the key itself). */
export interface Me {
  id: string;
  prefix: string;
  name: string;
  scopes: Scope[];
  created_at: number | string;
  last_used_at: number | string | null;
}

interface Auth {
  key: string | null;
  me: Me | null;
  /** Checks the key with the gateway; keeps it only when the gateway knows it. */
  signIn(key: string): Promise<void>;
  signOut(reason?: string): void;
  /** Whether the key holds a scope: buttons it does not allow are not drawn (the gateway refuses them anyway). */
  can(scope: Scope): boolean;
  /** Why the last session ended, when it was not the user's doing (a revoked key). */
  notice: string | null;
}

const AuthContext = createContext<Auth | null>(null);

export function AuthProvider({ children }: { children: ReactNode }) {
  const client = useQueryClient();
  const [key, setKey] = useState<string | null>(() => storedKey.get());
  const [me, setMe] = useState<Me | null>(null);
  const [notice, setNotice] = useState<string | null>(null);

  const signOut = useCallback(
    (reason?: string) => {
      storedKey.clear();
      setKey(null);
      setMe(null);
      setNotice(reason ?? null);
      client.clear();
    },
    [client],
  );

  useEffect(() => {
    whenUnauthorized(() => signOut('The gateway no longer accepts this key (revoked?). Sign in again.'));
  }, [signOut]);

  // A key kept from before this load (a reload): ask who it is.
  useEffect(() => {
    if (!key || me) return;
    api<Me>('/api/keys/me', { key }).then(setMe, () => signOut('The stored key was refused. Sign in again.'));
  }, [key, me, signOut]);

  const signIn = useCallback(async (candidate: string) => {
    const found = await api<Me>('/api/keys/me', { key: candidate });
    storedKey.set(candidate);
    setNotice(null);
    setKey(candidate);
    setMe(found);
  }, []);

  const can = useCallback((scope: Scope) => Boolean(me?.scopes.includes(scope)), [me]);

  return (
    <AuthContext.Provider value={{ key, me, signIn, signOut, can, notice }}>{children}</AuthContext.Provider>
  );
}

export function useAuth(): Auth {
  const auth = useContext(AuthContext);
  if (!auth) throw new Error('useAuth outside AuthProvider');
  return auth;
}
