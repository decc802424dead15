import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { type ConnectionOptions, call, resolveConnection } from './connection';
import { QlabClientError } from './errors';
import { multipartBody } from './multipart';
import { type ZipOptions, zipPaths } from './zip';

export interface UploadResponse {
  status: 'ok';
  id: number;
  created_at: string;
  /** Results: the run id given (runID), or null. */
  run_id?: string | null;
  sha256?: string;
  size?: number;
  download_url?: string;
}

export interface ArchiveItem {
  id: number;
  hashID: string;
  name?: string;
  /** Results: the run that produced it, or null. */
  run_id?: string | null;
  /** null when none were given, as QIBO DB answers. */
  notes: string | null;
  created_at: string;
  filename: string;
  size: number;
  sha256?: string;
  download_url?: string;
}

/** The seed returns (notes, filename, bytes); here it is one object. */
export interface DownloadedArchive {
  notes: string | null;
  filename: string;
  created_at: string;
  /** Results only. */
  run_id?: string | null;
  data: Buffer;
}

/** A best run: which run of a calibration is the one to use (QIBO DB's best runs). */
export interface BestRun {
  id: number;
  calibration_hash_id: string;
  run_id: string;
  created_at: string;
}

export interface UploadOptions extends ConnectionOptions, ZipOptions {
  /** File name the archive is stored under. Default "archive.zip". */
  archiveName?: string;
  /**
   * Sent as Idempotency-Key: a repeat of this upload with the same key (a retry after a lost
   * answer, a job run twice) gets the first upload's answer instead of storing another.
   */
  idempotencyKey?: string;
}

export interface ListOptions extends ConnectionOptions {
  hashID?: string;
  name?: string;
  /** Results only. */
  runID?: string;
  since?: string | Date;
  limit?: number;
  offset?: number;
}

async function uploadZip(
  route: string,
  fields: Record<string, string>,
  files: string[],
  options: UploadOptions,
) {
  const conn = await resolveConnection(options);
  const zip = await zipPaths(files, options);
  const form = multipartBody(fields, {
    field: 'archive',
    filename: options.archiveName ?? 'archive.zip',
    contentType: 'application/zip',
    data: zip.stream,
  });
  try {
    const res = await call(conn, route, {
      method: 'POST',
      headers: {
        'Content-Type': form.contentType,
        ...(options.idempotencyKey ? { 'Idempotency-Key': options.idempotencyKey } : {}),
      },
      body: Readable.from(form.body) as unknown as RequestInit['body'],
      duplex: 'half',
    });
    return (await res.json()) as UploadResponse;
  } finally {
    zip.stream.destroy();
  }
}

/** Zips `files` as a stream and uploads them as a calibration (seed: calibrations_upload). */
export function calibrationsUpload(
  hashID: string,
  notes: string,
  files: string[],
  options: UploadOptions = {},
) {
  return uploadZip('/calibrations/upload', { hashID, notes }, files, options);
}

/** Zips `files` and uploads them as a result (seed: results_upload), with its run id when given. */
export function resultsUpload(
  hashID: string,
  name: string,
  notes: string,
  files: string[],
  options: UploadOptions & { runID?: string } = {},
) {
  const fields: Record<string, string> = { hashID, name, notes };
  if (options.runID) fields.runID = options.runID;
  return uploadZip('/results/upload', fields, files, options);
}

function listQuery(o: ListOptions): string {
  const q = new URLSearchParams();
  if (o.hashID !== undefined) q.set('hashID', o.hashID);
  if (o.name !== undefined) q.set('name', o.name);
  if (o.runID !== undefined) q.set('runID', o.runID);
  if (o.since !== undefined) q.set('since', o.since instanceof Date ? o.since.toISOString() : o.since);
  if (o.limit !== undefined) q.set('limit', String(o.limit));
  if (o.offset !== undefined) q.set('offset', String(o.offset));
  const s = q.toString();
  return s ? `?${s}` : '';
}

const PAGE = 1000;

/** One page when a limit is given; otherwise every item, a page at a time (the seed lists every row). */
async function listAll(route: string, options: ListOptions): Promise<ArchiveItem[]> {
  const conn = await resolveConnection(options);
  const page = async (o: ListOptions) =>
    ((await (await call(conn, `${route}${listQuery(o)}`)).json()) as { items: ArchiveItem[] }).items;
  if (options.limit !== undefined) return page(options);
  const out: ArchiveItem[] = [];
  for (let offset = options.offset ?? 0; ; offset += PAGE) {
    const items = await page({ ...options, limit: PAGE, offset });
    out.push(...items);
    if (items.length < PAGE) return out;
  }
}

/** Calibration metadata, newest first, all of it unless `limit` says otherwise (seed: calibrations_list). */
export function calibrationsList(options: ListOptions = {}): Promise<ArchiveItem[]> {
  return listAll('/calibrations/list', options);
}

/**
 * Result metadata, newest first: for one hashID as the seed's results_list(hashID) (name,
 * run_id, notes, created_at), or filtered by the options.
 */
export function resultsList(hashIDOrOptions: string | ListOptions = {}, options: ListOptions = {}) {
  const o = typeof hashIDOrOptions === 'string' ? { ...options, hashID: hashIDOrOptions } : hashIDOrOptions;
  return listAll('/results/list', o);
}

/** Marks `runID` as the best run of a calibration (seed: set_best_run). */
export async function setBestRun(
  calibrationHashID: string,
  runID: string,
  options: ConnectionOptions = {},
): Promise<BestRun & { status: 'ok' }> {
  const conn = await resolveConnection(options);
  const res = await call(conn, '/bestruns/set', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ calibrationHashID, runID }),
  });
  return (await res.json()) as BestRun & { status: 'ok' };
}

/** The newest best run, or null when none is set (seed: get_best_run). */
export async function getBestRun(options: ConnectionOptions = {}): Promise<BestRun | null> {
  const conn = await resolveConnection(options);
  const res = await call(conn, '/bestruns/get', { allow404: true });
  if (res.status === 404) return null;
  const { status: _status, ...run } = (await res.json()) as BestRun & { status: string };
  return run;
}

/** The newest `n` best runs, newest first (seed: get_best_n_runs; the server clamps n to 1-100). */
export async function getBestNRuns(n = 10, options: ConnectionOptions = {}): Promise<BestRun[]> {
  const conn = await resolveConnection(options);
  const res = await call(conn, `/bestruns/list?limit=${encodeURIComponent(String(n))}`);
  return ((await res.json()) as { items: BestRun[] }).items;
}

/** The newest calibration's metadata, or {} when there is none (seed: calibrations_get_latest). */
export async function calibrationsGetLatest(options: ConnectionOptions = {}): Promise<Partial<ArchiveItem>> {
  const conn = await resolveConnection(options);
  const res = await call(conn, '/calibrations/latest', { allow404: true });
  if (res.status === 404) return {};
  return (await res.json()) as ArchiveItem;
}

async function downloadJson(route: string, selector: Record<string, string>, options: ConnectionOptions) {
  const conn = await resolveConnection(options);
  const res = await call(conn, route, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(selector),
  });
  const body = (await res.json()) as {
    notes?: string | null;
    filename: string;
    created_at: string;
    run_id?: string | null;
    data_b64: string;
  };
  return {
    notes: body.notes ?? null,
    filename: body.filename,
    created_at: body.created_at,
    ...(body.run_id !== undefined ? { run_id: body.run_id } : {}),
    data: Buffer.from(body.data_b64, 'base64'),
  };
}

/** The newest calibration zip for hashID, in memory (seed: calibrations_download). Large archives: use downloadArchive. */
export function calibrationsDownload(
  hashID: string,
  options: ConnectionOptions = {},
): Promise<DownloadedArchive> {
  return downloadJson('/calibrations/download', { hashID }, options);
}

/** The newest result zip for hashID and name, in memory (seed: results_download). */
export function resultsDownload(
  hashID: string,
  name: string,
  options: ConnectionOptions & { runID?: string } = {},
): Promise<DownloadedArchive> {
  return downloadJson(
    '/results/download',
    { hashID, name, ...(options.runID ? { runID: options.runID } : {}) },
    options,
  );
}

export interface StreamDownloadOptions extends ConnectionOptions {
  onProgress?: (receivedBytes: number, totalBytes: number | undefined) => void;
}

export type ArchiveSelector =
  | { kind: 'calibration' | 'result'; id: number }
  | { kind: 'calibration'; hashID: string }
  | { kind: 'result'; hashID: string; name: string; runID?: string };

/**
 * Streams an archive to `destination` without holding it in memory; writes to a temp name
 * and renames, so a failed download leaves no partial file. Returns the server's metadata.
 */
export async function downloadArchive(
  selector: ArchiveSelector,
  destination: string,
  options: StreamDownloadOptions = {},
) {
  const conn = await resolveConnection(options);
  const base = `/${selector.kind}s`;
  let route: string;
  if ('id' in selector) route = `${base}/${selector.id}/archive`;
  else {
    const q = new URLSearchParams({
      hashID: selector.hashID,
      ...('name' in selector ? { name: selector.name } : {}),
      ...('runID' in selector && selector.runID ? { runID: selector.runID } : {}),
    });
    route = `${base}/archive?${q}`;
  }
  const res = await call(conn, route);
  if (!res.body) throw new QlabClientError('the server sent no body');
  const total = Number(res.headers.get('content-length') ?? Number.NaN);
  let received = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      received += chunk.length;
      options.onProgress?.(received, Number.isFinite(total) ? total : undefined);
      done(null, chunk);
    },
  });
  const partial = `${destination}.part`;
  try {
    await pipeline(
      Readable.fromWeb(res.body as WebReadableStream<Uint8Array>),
      counter,
      createWriteStream(partial),
    );
    await rename(partial, destination);
  } catch (err) {
    await rm(partial, { force: true });
    throw err;
  }
  const disposition = res.headers.get('content-disposition') ?? '';
  const filename = /filename="([^"]+)"/.exec(disposition)?.[1] ?? 'archive.zip';
  return { filename, size: received, sha256: res.headers.get('x-archive-sha256') ?? undefined };
}
