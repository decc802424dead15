import { networkError, QlabClientError } from './errors';

export interface GatewayOptions {
  /** Gateway URL; default http://127.0.0.1:8080 (the CLI: --gateway, else QLAB_GATEWAY_URL). */
  gatewayUrl?: string;
  /** An admin key (the CLI: --api-key, else QLAB_API_KEY). */
  apiKey?: string;
}

export interface ApiKeyInfo {
  id: string;
  prefix: string;
  name: string;
  scopes: string[];
  created_at: string;
  revoked_at: string | null;
  last_used_at: string | null;
}

async function gatewayCall<T>(o: GatewayOptions, method: string, path: string, body?: unknown): Promise<T> {
  const base = (o.gatewayUrl ?? 'http://127.0.0.1:8080').replace(/\/$/, '');
  const key = o.apiKey;
  if (!key)
    throw new QlabClientError(
      'an admin API key is needed: --api-key or QLAB_API_KEY (pnpm start prints the bootstrap key)',
    );
  let res: Response;
  try {
    res = await fetch(`${base}${path}`, {
      method,
      headers: { 'X-API-Key': key, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
  } catch (err) {
    throw networkError(base, err);
  }
  const text = await res.text();
  const parsed = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  if (!res.ok)
    throw new QlabClientError(
      `${res.status}: ${String(parsed.detail ?? res.statusText)}`,
      res.status,
      parsed,
    );
  return parsed as T;
}

/** Creates a gateway API key; the key itself is returned only here. */
export function createApiKey(name: string, scopes: string[], o: GatewayOptions = {}) {
  return gatewayCall<ApiKeyInfo & { key: string }>(o, 'POST', '/api/keys', { name, scopes });
}

export async function listApiKeys(o: GatewayOptions = {}): Promise<ApiKeyInfo[]> {
  return (await gatewayCall<{ keys: ApiKeyInfo[] }>(o, 'GET', '/api/keys')).keys;
}

export function revokeApiKey(id: string, o: GatewayOptions = {}) {
  return gatewayCall<{ revoked: string }>(o, 'DELETE', `/api/keys/${encodeURIComponent(id)}`);
}
