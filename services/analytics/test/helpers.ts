import path from 'node:path';
import { OutboxPublisher } from '@qlab/events';
import { type Listening, listen, silentLogger } from '@qlab/kit';
import { tempDir } from '@qlab/testkit';
import { compose } from '../src/compose';
import type { DomainName } from '../src/domain/domains';
import type { openDomain } from '../src/open-domain';

export interface RunningDomain {
  url: string;
  base: string;
  dir: string;
  dbPath: string;
  domain: Awaited<ReturnType<typeof openDomain>>;
  publisher?: OutboxPublisher;
  /** Stops the server and closes the file; the temp dir stays until cleanup. */
  stop(): Promise<void>;
  cleanup(): Promise<void>;
}

export interface DomainTestOptions {
  apiToken?: string;
  maxBulkBytes?: number;
  queryTimeoutMs?: number;
  mqttUrl?: string;
  /** Reuse this directory (a restart). */
  dir?: string;
}

/** One analytics domain on a temp DuckDB file, served on port 0. */
export async function startDomain(name: DomainName, options: DomainTestOptions = {}): Promise<RunningDomain> {
  const tmp = options.dir ? { dir: options.dir, cleanup: () => undefined } : tempDir('qlab-analytics-');
  const dbPath = path.join(tmp.dir, `${name}.duckdb`);
  let publisher: OutboxPublisher | undefined;
  const { app, domain } = await compose(
    {
      domain: name,
      dbPath,
      dataDir: tmp.dir,
      queryTimeoutMs: options.queryTimeoutMs ?? 10_000,
      apiToken: options.apiToken,
      maxBulkBytes: options.maxBulkBytes ?? 64 * 1024 * 1024,
      loadTimeoutMs: 60_000,
    },
    { logger: silentLogger(), onEvent: () => publisher?.kick() },
  );
  if (options.mqttUrl) {
    publisher = new OutboxPublisher({
      source: domain.outbox,
      mqttUrl: options.mqttUrl,
      clientId: `analytics-test-${Math.random()}`,
      pollMs: 20,
    });
    publisher.start();
  }
  const server: Listening = await listen(app, { port: 0, graceMs: 0 });
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await server.close();
    await publisher?.stop();
    await domain.db.close();
  };
  return {
    url: server.url,
    base: `${server.url}/api/${name}/db`,
    dir: tmp.dir,
    dbPath,
    domain,
    publisher,
    stop,
    async cleanup() {
      await stop();
      tmp.cleanup();
    },
  };
}

export async function call(
  url: string,
  init: { method?: string; body?: unknown; raw?: string | Buffer; type?: string; token?: string } = {},
  // biome-ignore lint/suspicious/noExplicitAny: tests read whatever JSON came back.
): Promise<{ status: number; body: any; text: string; headers: Headers }> {
  const headers: Record<string, string> = {};
  let body: string | Buffer | undefined;
  if (init.raw !== undefined) {
    body = init.raw;
    headers['content-type'] = init.type ?? 'application/x-ndjson';
  } else if (init.body !== undefined) {
    body = JSON.stringify(init.body);
    headers['content-type'] = 'application/json';
  }
  if (init.token) headers.authorization = `Bearer ${init.token}`;
  const res = await fetch(url, {
    method: init.method ?? (body !== undefined ? 'POST' : 'GET'),
    headers,
    body,
  });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: res.status, body: parsed, text, headers: res.headers };
}

export const ndjson = (rows: object[]) => `${rows.map((r) => JSON.stringify(r)).join('\n')}\n`;
