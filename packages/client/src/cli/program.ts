import { existsSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import {
  type ArchiveItem,
  calibrationsGetLatest,
  calibrationsList,
  calibrationsUpload,
  downloadArchive,
  getBestNRuns,
  getBestRun,
  resultsList,
  resultsUpload,
  setBestRun,
} from '../calibrations';
import {
  clientConfigPath,
  DEFAULT_UPLOAD_URL,
  readClientConfig,
  setServer,
  setUploadServer,
} from '../config-file';
import type { ConnectionOptions } from '../connection';
import { QlabClientError } from '../errors';
import { createApiKey, listApiKeys, revokeApiKey } from '../keys';
import { unpackFile } from '../unpack';
import { progressBar } from './progress';
import { uploadFiles } from './upload-command';
import { runWorker } from './worker-command';

export interface CliIO {
  out: (line: string) => void;
  err: (line: string) => void;
  /** Show progress bars (default: when stderr is a terminal). */
  progress?: boolean;
}

const wholeNumber = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('must be a whole number');
  return n;
};

function table(items: ArchiveItem[], withName: boolean): string {
  if (items.length === 0) return '(none)';
  const rows = items.map((i) => [
    String(i.id),
    i.hashID,
    ...(withName ? [i.name ?? ''] : []),
    i.created_at,
    String(i.size),
    i.filename,
    (i.notes ?? '').replace(/\s+/g, ' ').slice(0, 40),
  ]);
  const head = ['ID', 'HASHID', ...(withName ? ['NAME'] : []), 'CREATED (UTC)', 'BYTES', 'FILE', 'NOTES'];
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? '').length)));
  return [head, ...rows]
    .map((r) =>
      r
        .map((cell, c) => cell.padEnd(widths[c] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** Builds the `qlab` program; `main` parses argv. Kept separate so tests can run it in-process. */
export function buildProgram(io: CliIO): Command {
  const program = new Command('qlab')
    .description('qlab command-line tool: calibration and result archives')
    .option(
      '--server <url>',
      'server URL (default: from `qlab config set-server`, else http://127.0.0.1:5050)',
    )
    .option('--token <token>', 'API token (default: from the client config)')
    .showHelpAfterError()
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s.trimEnd()), writeErr: (s) => io.err(s.trimEnd()) });

  const conn = (): ConnectionOptions => {
    const o = program.opts<{ server?: string; token?: string }>();
    return { serverUrl: o.server, apiToken: o.token };
  };

  const config = program.command('config').description('the persisted client config');
  config
    .command('set-server <url>')
    .description(`remember the server URL (and token) in ${clientConfigPath()}`)
    .option('--token <token>', 'API token to remember')
    .action(async (url: string, o: { token?: string }) => {
      await setServer(url, o.token ?? program.opts().token);
      io.out(`saved ${url} to ${clientConfigPath()}`);
    });
  config
    .command('set-upload-server <url>')
    .description('remember the chunked-upload service (and its API key) for `qlab upload`')
    .option('--key <key>', 'API key to remember')
    .action(async (url: string, o: { key?: string }) => {
      await setUploadServer(url, o.key);
      io.out(`saved upload server ${url} to ${clientConfigPath()}`);
    });
  config.command('show').action(async () => {
    const c = await readClientConfig();
    const shown = {
      file: clientConfigPath(),
      server_url: c.server_url ?? null,
      api_token: c.api_token ? '(set)' : null,
      upload_url: c.upload_url ?? null,
      upload_key: c.upload_key ? '(set)' : null,
    };
    io.out(JSON.stringify(shown, null, 2));
  });

  program
    .command('upload <files...>')
    .description(
      'upload large files to the chunked-upload service; run it again to resume an interrupted upload',
    )
    .option(
      '--upload-server <url>',
      `chunked-upload URL (default: from \`qlab config set-upload-server\`, else ${DEFAULT_UPLOAD_URL})`,
    )
    .option('--key <key>', 'API key (default: from the config, else INDEXEDCP_API_KEY)')
    .option('--protocol <protocol>', 'tus or indexedcp', 'tus')
    .option(
      '--chunk-mb <n>',
      'MiB per request (tus default: the whole file at once; indexedcp default: 1)',
      wholeNumber,
    )
    .option('--encrypt', "indexedcp only: seal chunks with the server's public key before buffering them")
    .action(
      async (
        files: string[],
        o: { uploadServer?: string; key?: string; protocol: string; chunkMb?: number; encrypt?: boolean },
      ) => {
        if (o.protocol !== 'tus' && o.protocol !== 'indexedcp')
          throw new QlabClientError('--protocol must be tus or indexedcp');
        if (o.encrypt && o.protocol !== 'indexedcp')
          throw new QlabClientError('--encrypt needs --protocol indexedcp (tus uploads travel as they are)');
        const saved = await readClientConfig();
        await uploadFiles(files, {
          serverUrl: (o.uploadServer ?? saved.upload_url ?? DEFAULT_UPLOAD_URL).replace(/\/+$/, ''),
          apiKey: o.key ?? saved.upload_key ?? process.env.INDEXEDCP_API_KEY,
          protocol: o.protocol,
          chunkSize: o.chunkMb ? o.chunkMb * 1024 * 1024 : undefined,
          encrypt: o.encrypt === true,
          io,
        });
      },
    );

  const upload = async (
    kind: 'calibration' | 'result',
    run: (o: object) => Promise<{ id: number; created_at: string; sha256?: string }>,
  ) => {
    const bar = progressBar(`zip+upload ${kind}`, io.progress);
    try {
      const r = await run({
        ...conn(),
        onProgress: (done: number, total: number) => bar.update(done, total),
      });
      bar.stop();
      io.out(`uploaded ${kind} ${r.id} at ${r.created_at}${r.sha256 ? ` (sha256 ${r.sha256})` : ''}`);
    } finally {
      bar.stop();
    }
  };

  const download = async (
    selector: Parameters<typeof downloadArchive>[0],
    o: { output?: string; unpack?: string; force?: boolean },
  ) => {
    const tmpTarget = o.output ?? `.qlab-download-${process.pid}.zip`;
    if (o.output && existsSync(o.output) && !o.force)
      throw new QlabClientError(`${o.output} exists; pass --force to overwrite`);
    const bar = progressBar('download', io.progress);
    let info: Awaited<ReturnType<typeof downloadArchive>>;
    try {
      info = await downloadArchive(selector, tmpTarget, {
        ...conn(),
        onProgress: (d, t) => bar.update(d, t),
      });
    } finally {
      bar.stop();
    }
    let target = tmpTarget;
    if (!o.output) {
      target = path.resolve(path.basename(info.filename));
      if (existsSync(target) && !o.force) {
        await rm(tmpTarget, { force: true });
        throw new QlabClientError(`${target} exists; pass --force to overwrite or -o to choose a name`);
      }
      await rename(tmpTarget, target);
    }
    io.out(`saved ${info.size} bytes to ${target}${info.sha256 ? ` (sha256 ${info.sha256})` : ''}`);
    if (o.unpack) {
      const written = await unpackFile(o.unpack, target);
      io.out(`unpacked ${written.length} files into ${path.resolve(o.unpack)}`);
    }
  };

  const keys = program.command('keys').description('gateway API keys (needs an admin key)');
  // The CLI reads the environment; the library only takes what it is given.
  const gw = (o: { gateway?: string; apiKey?: string }) => ({
    gatewayUrl: o.gateway ?? process.env.QLAB_GATEWAY_URL,
    apiKey: o.apiKey ?? process.env.QLAB_API_KEY,
  });
  const gwOptions = (c: Command) =>
    c
      .option('--gateway <url>', 'gateway URL (env QLAB_GATEWAY_URL, default http://127.0.0.1:8080)')
      .option('--api-key <key>', 'admin API key (env QLAB_API_KEY)');
  gwOptions(keys.command('create <name>'))
    .description('create a key; it is printed once')
    .option('--scopes <list>', 'comma-separated: read, write, admin', 'read')
    .action(async (name: string, o: { scopes: string; gateway?: string; apiKey?: string }) => {
      const created = await createApiKey(
        name,
        o.scopes.split(',').map((s) => s.trim()),
        gw(o),
      );
      io.out(
        `${created.key}\n(id ${created.id}, scopes ${created.scopes.join(',')}; store the key now, it is not shown again)`,
      );
    });
  gwOptions(keys.command('list'))
    .description('list keys (never the keys themselves)')
    .action(async (o: { gateway?: string; apiKey?: string }) => {
      const list = await listApiKeys(gw(o));
      io.out(
        list
          .map(
            (k) =>
              `${k.id}  ${k.prefix}…  ${k.scopes.join(',').padEnd(16)} ${k.revoked_at ? 'revoked' : 'active '}  ${k.name}`,
          )
          .join('\n') || '(no keys)',
      );
    });
  gwOptions(keys.command('revoke <id>'))
    .description('revoke a key by id')
    .action(async (id: string, o: { gateway?: string; apiKey?: string }) => {
      await revokeApiKey(id, gw(o));
      io.out(`revoked ${id}`);
    });

  program
    .command('worker')
    .description('run a job worker that claims jobs from the job-worker API (drains on Ctrl-C)')
    .option('--jobs-url <url>', 'job-worker URL (env JOBS_URL, default http://127.0.0.1:8100)')
    .option('--jobs-token <token>', 'API token (env JOBS_API_TOKEN)')
    .option('--tasks <list>', 'comma-separated task types (env WORKER_SUPPORTED_TASKS, default all built-in)')
    .option('--concurrency <n>', 'jobs at once (env WORKER_CONCURRENCY, default 1)', wholeNumber)
    .option('--id <id>', 'worker id (env WORKER_ID)')
    .action(
      async (o: {
        jobsUrl?: string;
        jobsToken?: string;
        tasks?: string;
        concurrency?: number;
        id?: string;
      }) => {
        const code = await runWorker({ ...o, token: o.jobsToken });
        if (code !== 0) throw new QlabClientError(`the worker exited with code ${code}`);
      },
    );

  const cal = program.command('calibrations').alias('cal').description('calibration archives');
  cal
    .command('upload <files...>')
    .description('zip files or folders and upload them as a calibration')
    .requiredOption('--hash-id <hashID>', 'the calibration hashID')
    .option('--notes <text>', 'notes', '')
    .option('--level <0-9>', 'zip compression level', wholeNumber, 1)
    .action((files: string[], o: { hashId: string; notes: string; level: number }) =>
      upload('calibration', (c) =>
        calibrationsUpload(o.hashId, o.notes, files, { ...c, compressionLevel: o.level }),
      ),
    );
  cal
    .command('list')
    .description('list calibrations, newest first')
    .option('--hash-id <hashID>')
    .option('--limit <n>', 'at most n', wholeNumber)
    .option('--json', 'print JSON')
    .action(async (o: { hashId?: string; limit?: number; json?: boolean }) => {
      const items = await calibrationsList({ ...conn(), hashID: o.hashId, limit: o.limit });
      io.out(o.json ? JSON.stringify(items, null, 2) : table(items, false));
    });
  cal
    .command('latest')
    .description('metadata of the newest calibration')
    .action(async () => {
      const latest = await calibrationsGetLatest(conn());
      io.out(JSON.stringify(latest, null, 2));
    });
  cal
    .command('download <hashID>')
    .description('download the newest calibration for hashID (streamed)')
    .option('-o, --output <file>', 'where to save the zip (default: its stored file name)')
    .option('--unpack <folder>', 'also unpack it into this folder')
    .option('--force', 'overwrite an existing file')
    .action((hashID: string, o) => download({ kind: 'calibration', hashID }, o));

  const res = program.command('results').description('result archives');
  res
    .command('upload <files...>')
    .description('zip files or folders and upload them as a result')
    .requiredOption('--hash-id <hashID>')
    .requiredOption('--name <name>')
    .option('--notes <text>', 'notes', '')
    .option('--run-id <runID>', 'the run that produced it')
    .option('--level <0-9>', 'zip compression level', wholeNumber, 1)
    .action(
      (files: string[], o: { hashId: string; name: string; notes: string; runId?: string; level: number }) =>
        upload('result', (c) =>
          resultsUpload(o.hashId, o.name, o.notes, files, {
            ...c,
            compressionLevel: o.level,
            runID: o.runId,
          }),
        ),
    );
  res
    .command('list')
    .option('--hash-id <hashID>')
    .option('--name <name>')
    .option('--run-id <runID>')
    .option('--limit <n>', 'at most n', wholeNumber)
    .option('--json', 'print JSON')
    .action(async (o: { hashId?: string; name?: string; runId?: string; limit?: number; json?: boolean }) => {
      const items = await resultsList({
        ...conn(),
        hashID: o.hashId,
        name: o.name,
        runID: o.runId,
        limit: o.limit,
      });
      io.out(o.json ? JSON.stringify(items, null, 2) : table(items, true));
    });
  res
    .command('download <hashID> <name>')
    .description('download the newest result for hashID and name (streamed)')
    .option('-o, --output <file>')
    .option('--unpack <folder>')
    .option('--run-id <runID>', 'that run only (404 when there is none)')
    .option('--force')
    .action((hashID: string, name: string, o) =>
      download({ kind: 'result', hashID, name, runID: o.runId }, o),
    );

  const best = program.command('bestruns').description("the calibration's best runs (QIBO DB)");
  best
    .command('set <calibrationHashID> <runID>')
    .description('mark a run as the best run of a calibration')
    .action(async (hashID: string, runID: string) => {
      const r = await setBestRun(hashID, runID, conn());
      io.out(`best run ${r.run_id} set for ${r.calibration_hash_id} at ${r.created_at} (id ${r.id})`);
    });
  best
    .command('get')
    .description('the newest best run')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const r = await getBestRun(conn());
      if (!r) throw new QlabClientError('no best run set');
      io.out(o.json ? JSON.stringify(r, null, 2) : `${r.calibration_hash_id}  ${r.run_id}  ${r.created_at}`);
    });
  best
    .command('list')
    .description('the newest best runs, newest first')
    .option('--limit <n>', 'how many (1-100, default 10)', wholeNumber)
    .option('--json', 'print JSON')
    .action(async (o: { limit?: number; json?: boolean }) => {
      const runs = await getBestNRuns(o.limit ?? 10, conn());
      io.out(
        o.json
          ? JSON.stringify(runs, null, 2)
          : runs.length === 0
            ? '(none)'
            : runs.map((r) => `${r.id}  ${r.calibration_hash_id}  ${r.run_id}  ${r.created_at}`).join('\n'),
      );
    });

  return program;
}

/** Runs the CLI; resolves to the exit code. */
export async function runCli(argv: string[], io: CliIO): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    const e = err as { code?: string; exitCode?: number; message?: string };
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version') return 0;
    if (e.code?.startsWith('commander.')) return e.exitCode ?? 2;
    io.err(`qlab: ${err instanceof QlabClientError ? err.message : (e.message ?? String(err))}`);
    return 1;
  }
}
