import { rm } from 'node:fs/promises';
import {
  badRequest,
  bearerToken,
  constantTimeEqual,
  forbidden,
  type IdempotencyKeys,
  idempotencyOf,
  idempotentResultGone,
  type Logger,
  notFound,
  parseInput,
  serviceRouter,
  unprocessable,
} from '@qlab/kit';
import type { RequestHandler, Router } from 'express';
import type { ArchiveService } from '../domain/archive-service';
import { type ArchiveKind, type ArchiveRecord, cleanFilename, type NewArchive } from '../domain/archives';
import { listZipEntries } from '../domain/zip-entries';
import type { ArchiveBlobs } from '../storage/archive-blobs';
import type { MetadataStore } from '../storage/metadata-store';
import { formFields, receiveMultipart } from '../upload/receive-multipart';
import { assertZipArchive } from '../upload/zip-check';
import { presentItem } from './present';
import {
  calibrationSelector,
  calibrationUploadFields,
  entriesQuery,
  idParam,
  latestQuery,
  listQuery,
  resultSelector,
  resultUploadFields,
  runIdOf,
} from './schemas';
import { archiveMissing, sendArchive, sendBase64Json } from './send-archive';

export interface ArchiveRouteDeps {
  store: MetadataStore;
  idempotency: IdempotencyKeys;
  blobs: ArchiveBlobs;
  service: ArchiveService;
  logger: Logger;
  maxUploadBytes: number;
  jsonDownloadMaxBytes: number;
  adminToken?: string;
}

/**
 * What an upload asks for, for its Idempotency-Key's fingerprint: kind, hashID, name, run id and
 * notes, so the same key for another upload is refused instead of answered wrongly. The archive's
 * bytes are not in it: a retry may zip the same files anew (a job run again on another worker),
 * and the first archive is the one kept.
 */
function uploadAsked(a: NewArchive) {
  return [a.kind, a.hashID, a.name, a.runId, a.notes];
}

/** POST …/upload: multipart with hashID, notes (and name for results) and one zip file "archive". */
export function uploadHandler(kind: ArchiveKind, deps: ArchiveRouteDeps): RequestHandler {
  return async (req, res) => {
    // A refused body is the kit's error handler's to drop (or to close on, when it cannot).
    const received = await receiveMultipart(req, {
      tmpDir: deps.blobs.tmpDir,
      maxBytes: deps.maxUploadBytes,
      fileField: 'archive',
    });
    const { fields, file } = received;
    try {
      const form =
        kind === 'calibration'
          ? { ...parseInput(calibrationUploadFields, fields, 'form fields'), name: null, runId: undefined }
          : { ...parseInput(resultUploadFields, fields, 'form fields'), runId: runIdOf(fields) };
      if (!file) throw badRequest('missing file field "archive" (a zip archive)');
      await assertZipArchive(file.tempPath);
      const archive = {
        kind,
        hashID: form.hashID,
        name: form.name,
        runId: form.runId ?? null,
        notes: form.notes,
        filename: cleanFilename(file.filename),
        size: file.size,
        sha256: file.sha256,
      };
      const idem = idempotencyOf(req, uploadAsked(archive));
      const answer = (saved: ArchiveRecord) => {
        const item = presentItem(req, saved);
        res.json({
          status: 'ok',
          id: saved.id,
          created_at: item.created_at,
          ...(kind === 'result' ? { run_id: saved.runId } : {}),
          sha256: saved.sha256,
          size: saved.size,
          download_url: item.download_url,
        });
      };
      /** The archive a repeat of an earlier upload with this key stored, or a 422 if it asked for another. */
      const replay = async () => {
        const first = idem && (await deps.idempotency.first(idem, kind));
        if (!first) return false;
        const saved = await deps.store.get(kind, Number(first));
        if (!saved) throw idempotentResultGone();
        res.setHeader('Idempotent-Replayed', 'true');
        answer(saved);
        return true;
      };
      if (await replay()) return;
      let saved: ArchiveRecord;
      try {
        saved = await deps.service.save(
          archive,
          file.tempPath,
          idem ? (trx, r) => deps.idempotency.record(trx, idem, kind, r.id) : undefined,
        );
      } catch (err) {
        // Two requests with one key at once: the second's insert failed; answer what the first stored.
        if (idem && (await replay())) return;
        throw err;
      }
      answer(saved);
    } finally {
      if (file) await rm(file.tempPath, { force: true });
    }
  };
}

/** Routes shared by /calibrations and /results. */
export function archiveRoutes(kind: ArchiveKind, deps: ArchiveRouteDeps): Router {
  const router = serviceRouter();
  const { store, blobs, logger } = deps;
  const streamPath = `/${kind}s`;

  const findLatest = async (filter: { hashID?: string; name?: string; runId?: string }) => {
    const record = await store.latest(kind, filter);
    if (!record) {
      const what = Object.entries(filter)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
        .join(', ');
      throw notFound(what ? `no ${kind} with ${what}` : `no ${kind}s stored yet`);
    }
    return record;
  };

  const findById = async (rawId: string | undefined) => {
    const { id } = parseInput(idParam, { id: rawId }, 'path');
    const record = await store.get(kind, id);
    if (!record) throw notFound(`${kind} ${id} does not exist`);
    return record;
  };

  router.post('/upload', uploadHandler(kind, deps));

  /** hashID (and name, and a run id under any of its names, for results), from a body or a query. */
  const selectorOf = (input: unknown) => {
    if (kind === 'calibration') return parseInput(calibrationSelector, input, 'body');
    const s = parseInput(resultSelector, input, 'body');
    return { hashID: s.hashID, name: s.name, runId: runIdOf(s) };
  };

  router.get('/list', async (req, res) => {
    const { runID, ...q } = parseInput(listQuery, req.query, 'query');
    if (kind === 'calibration' && (q.name !== undefined || runID !== undefined))
      throw badRequest('calibrations have no name or run; filter by hashID');
    const filter = { ...q, runId: runID };
    if (q.limit !== undefined) {
      const { items, total } = await store.list(kind, { ...filter, limit: q.limit });
      res.json({ items: items.map((r) => presentItem(req, r)), total, limit: q.limit, offset: q.offset });
      return;
    }
    // No limit: every item, as the seed answers, written as it is read (never all in memory).
    res.type('application/json');
    res.write('{"items":[');
    let first = true;
    const total = await store.each(kind, filter, async (rows) => {
      let chunk = '';
      for (const r of rows) {
        chunk += `${first ? '' : ','}${JSON.stringify(presentItem(req, r))}`;
        first = false;
      }
      if (!res.write(chunk)) await new Promise((resolve) => res.once('drain', resolve));
    });
    res.end(`],"total":${total}}`);
  });

  router.get('/latest', async (req, res) => {
    const q = parseInput(latestQuery, req.query, 'query');
    const record = await findLatest(q);
    const item = presentItem(req, record);
    res.json({
      hashID: item.hashID,
      ...(kind === 'result' ? { name: item.name } : {}),
      notes: item.notes,
      created_at: item.created_at,
      id: item.id,
      filename: item.filename,
      size: item.size,
      sha256: item.sha256,
      download_url: item.download_url,
    });
  });

  router.post('/download', async (req, res) => {
    // JSON, a urlencoded form (parsed by the kit) or a multipart form, as the seed takes "json/form".
    const body = req.is('multipart/form-data') ? await formFields(req) : (req.body ?? {});
    const record = await findLatest(selectorOf(body));
    if (record.size > deps.jsonDownloadMaxBytes) {
      const url = presentItem(req, record).download_url;
      throw unprocessable(
        `archive is ${record.size} bytes, above the JSON download limit of ${deps.jsonDownloadMaxBytes} bytes (QIBO_JSON_DOWNLOAD_MAX_BYTES); stream it from GET ${streamPath}/${record.id}/archive`,
        { download_url: url, size: record.size },
      );
    }
    await sendBase64Json(res, record, blobs, logger);
  });

  // Streaming download of the newest archive matching hashID (and name for results).
  router.get('/archive', async (req, res) => {
    await sendArchive(req, res, await findLatest(selectorOf(req.query)), blobs, logger);
  });

  router.get('/:id', async (req, res) => {
    res.json(presentItem(req, await findById(req.params.id)));
  });

  // The files inside, from the zip's central directory (the console's detail page).
  router.get('/:id/entries', async (req, res) => {
    const q = parseInput(entriesQuery, req.query, 'query');
    const record = await findById(req.params.id);
    if (!(await blobs.exists(record.sha256))) throw archiveMissing(record, logger);
    // A caller who goes away stops the reading: a deep page of a big directory costs seconds.
    const gone = new AbortController();
    res.once('close', () => gone.abort());
    const { entries, total } = await listZipEntries(
      blobs.zipSource(record.sha256, record.size),
      q.offset,
      q.limit,
      gone.signal,
    );
    if (!res.destroyed) res.json({ entries, total, offset: q.offset, limit: q.limit });
  });

  router.get('/:id/archive', async (req, res) => {
    await sendArchive(req, res, await findById(req.params.id), blobs, logger);
  });

  router.delete('/:id', async (req, res) => {
    if (deps.adminToken) {
      const given = bearerToken(req.headers.authorization);
      if (!given || !constantTimeEqual(given, deps.adminToken))
        throw forbidden(`deleting ${kind}s needs the admin token`);
    }
    const { id } = parseInput(idParam, { id: req.params.id }, 'path');
    const removed = await deps.service.remove(kind, id);
    if (!removed) throw notFound(`${kind} ${id} does not exist`);
    res.status(204).end();
  });

  return router;
}
