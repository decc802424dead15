import { chmod, readFile, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import path from 'node:path';

/** What the seed client persists: defaults so server_url and api_token can be omitted later. */
export interface ClientConfig {
  server_url?: string;
  api_token?: string;
  /** chunked-upload service for `qlab upload`. */
  upload_url?: string;
  upload_key?: string;
}

export const DEFAULT_UPLOAD_URL = 'http://127.0.0.1:3000';

export const DEFAULT_SERVER_URL = 'http://127.0.0.1:5050';

/** ~/.qibo_client.json, or the file QIBO_CLIENT_CONFIG names. */
export function clientConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return env.QIBO_CLIENT_CONFIG || path.join(homedir(), '.qibo_client.json');
}

export async function readClientConfig(file = clientConfigPath()): Promise<ClientConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw err;
  }
  try {
    const parsed = JSON.parse(text) as ClientConfig;
    return typeof parsed === 'object' && parsed !== null ? parsed : {};
  } catch {
    throw new Error(`${file} is not valid JSON; fix or delete it`);
  }
}

/** Persists the default server URL and optional API token (seed: set_server). */
export async function setServer(
  serverUrl: string,
  apiToken?: string,
  file = clientConfigPath(),
): Promise<void> {
  const url = new URL(serverUrl); // throws on a malformed URL
  const previous = await readClientConfig(file);
  const config: ClientConfig = { ...previous, server_url: url.toString().replace(/\/$/, '') };
  if (apiToken) config.api_token = apiToken;
  else delete config.api_token;
  await writeConfig(file, config);
}

/** Persists the chunked-upload server and API key used by `qlab upload`. */
export async function setUploadServer(
  uploadUrl: string,
  apiKey?: string,
  file = clientConfigPath(),
): Promise<void> {
  const url = new URL(uploadUrl);
  const config: ClientConfig = {
    ...(await readClientConfig(file)),
    upload_url: url.toString().replace(/\/$/, ''),
  };
  if (apiKey) config.upload_key = apiKey;
  await writeConfig(file, config);
}

async function writeConfig(file: string, config: ClientConfig): Promise<void> {
  await writeFile(file, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
  await chmod(file, 0o600);
}
