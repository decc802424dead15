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
  sha256?: string;
  size?: number;
  download_url?: string;
}

export interface ArchiveItem {
  id: number;
  hashID: string;
  name?: string;
  notes: string;
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
  data: Buffer;
}

export interface UploadOptions extends ConnectionOptions, ZipOptions {
  /** File name the archive is stored under. Default "archive.zip". */
  archiveName?: string;
}

export interface ListOptions extends ConnectionOptions {
  hashID?: string;
  name?: string;
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
      headers: { 'Content-Type': form.contentType },
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

/** Zips `files` and uploads them as a result (seed: results_upload). */
export function resultsUpload(
  hashID: string,
  name: string,
  notes: string,
  files: string[],
  options: UploadOptions = {},
) {
  return uploadZip('/results/upload', { hashID, name, notes }, files, options);
}

function listQuery(o: ListOptions): string {
  const q = new URLSearchParams();
  if (o.hashID !== undefined) q.set('hashID', o.hashID);
  if (o.name !== undefined) q.set('name', o.name);
  if (o.since !== undefined) q.set('since', o.since instanceof Date ? o.since.toISOString() : o.since);
  if (o.limit !== undefined) q.set('limit', String(o.limit));
  if (o.offset !== undefined) q.set('offset', String(o.offset));
  const s = q.toString();
  return s ? `?${s}` : '';
}

/** Calibration metadata, newest first (seed: calibrations_list). */
export async function calibrationsList(options: ListOptions = {}): Promise<ArchiveItem[]> {
  const conn = await resolveConnection(options);
  const res = await call(conn, `/calibrations/list${listQuery(options)}`);
  return ((await res.json()) as { items: ArchiveItem[] }).items;
}

/** Result metadata, newest first. */
export async function resultsList(options: ListOptions = {}): Promise<ArchiveItem[]> {
  const conn = await resolveConnection(options);
  const res = await call(conn, `/results/list${listQuery(options)}`);
  return ((await res.json()) as { items: ArchiveItem[] }).items;
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
  const body = (await res.json()) as { notes?: string | null; filename: string; data_b64: string };
  return { notes: body.notes ?? null, filename: body.filename, data: Buffer.from(body.data_b64, 'base64') };
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
  options: ConnectionOptions = {},
): Promise<DownloadedArchive> {
  return downloadJson('/results/download', { hashID, name }, options);
}

export interface StreamDownloadOptions extends ConnectionOptions {
  onProgress?: (receivedBytes: number, totalBytes: number | undefined) => void;
}

export type ArchiveSelector =
  | { kind: 'calibration' | 'result'; id: number }
  | { kind: 'calibration'; hashID: string }
  | { kind: 'result'; hashID: string; name: string };

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
