import { DEFAULT_SERVER_URL, readClientConfig } from './config-file';
import { networkError, responseError } from './errors';

/** Per-call overrides; anything left out comes from the persisted client config. */
export interface ConnectionOptions {
  serverUrl?: string;
  apiToken?: string;
  /** Config file to read defaults from (default: clientConfigPath()). */
  configFile?: string;
  signal?: AbortSignal;
}

export interface Connection {
  serverUrl: string;
  apiToken?: string;
  signal?: AbortSignal;
}

export async function resolveConnection(options: ConnectionOptions = {}): Promise<Connection> {
  const saved = await readClientConfig(options.configFile);
  const serverUrl = (options.serverUrl ?? saved.server_url ?? DEFAULT_SERVER_URL).replace(/\/+$/, '');
  return { serverUrl, apiToken: options.apiToken ?? saved.api_token, signal: options.signal };
}

/** fetch with the token, friendly network errors, and non-2xx turned into QlabClientError. */
export async function call(
  conn: Connection,
  path: string,
  init: RequestInit & { duplex?: 'half'; allow404?: boolean } = {},
): Promise<Response> {
  const headers = new Headers(init.headers);
  if (conn.apiToken) headers.set('Authorization', `Bearer ${conn.apiToken}`);
  let res: Response;
  try {
    res = await fetch(`${conn.serverUrl}${path}`, { ...init, headers, signal: conn.signal });
  } catch (err) {
    throw networkError(conn.serverUrl, err);
  }
  if (res.ok || (init.allow404 && res.status === 404)) return res;
  throw await responseError(res, conn.serverUrl);
}
