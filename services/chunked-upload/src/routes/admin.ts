import { badRequest, notFound, parseInput, serviceRouter } from '@qlab/kit';
import type { Router } from 'express';
import { z } from 'zod';
import type { Upload } from '../domain/upload';
import type { UploadService } from '../domain/upload-service';
import type { ServerKeys } from '../storage/server-keys';

export function presentUpload(u: Upload) {
  return {
    id: u.id,
    protocol: u.protocol,
    status: u.status,
    /** Who owns it: `gw:<gateway key id>`, or a digest of the service key used (never a key). */
    key_id: u.keyId,
    clientFilename: u.clientFilename,
    filename: u.targetPath,
    offset: u.offset,
    length: u.length,
    totalChunks: u.totalChunks,
    receivedChunks: u.protocol === 'indexedcp' ? u.nextChunk : undefined,
    metadata: u.metadata,
    created_at: new Date(u.createdAt).toISOString(),
    updated_at: new Date(u.updatedAt).toISOString(),
    expires_at: u.status === 'active' ? new Date(u.expiresAt).toISOString() : null,
    completed_at: u.completedAt === null ? null : new Date(u.completedAt).toISOString(),
  };
}

const listQuery = z
  .object({
    status: z.enum(['active', 'complete', 'terminated', 'expired']).optional(),
    protocol: z.enum(['indexedcp', 'tus']).optional(),
    q: z.string().min(1).max(200).optional(),
    limit: z.coerce.number().int().min(1).max(500).default(100),
    offset: z.coerce.number().int().min(0).default(0),
  })
  .strict();

const dailyQuery = z.object({ days: z.coerce.number().int().min(1).max(366).default(14) }).strict();

const clearQuery = z
  .object({
    protocol: z.enum(['indexedcp', 'tus']).optional(),
    idle_ms: z.coerce.number().int().min(0).default(0),
  })
  .strict();

/** Server info (the seed's get_server_info), sessions and their cleanup (clear_sessions), listing and stats. */
export function adminRoutes(
  service: UploadService,
  info: { port: () => number; uploadDir: string; apiKeysCount: number; encryption?: ServerKeys },
): Router {
  const router = serviceRouter();
  const { store } = service;

  router.get('/info', async (_req, res) => {
    const counts = await store.counts();
    res.json({
      port: info.port(),
      upload_dir: info.uploadDir,
      path_mode: service.policy.pathMode,
      api_keys_count: info.apiKeysCount,
      encryption: info.encryption !== undefined,
      ...(info.encryption ? { encryption_status: info.encryption.status() } : {}),
      active_sessions: counts.active,
      max_bytes: service.policy.maxBytes,
      expire_after_ms: service.policy.expireAfterMs,
      idle_complete_after_ms: service.policy.idleCompleteAfterMs,
    });
  });

  // Sessions are the caller's own: another key's unfinished uploads are neither shown nor cleared.
  router.get('/sessions', async (_req, res) => {
    const keyId = String(res.locals.keyId);
    const { items, total } = await store.list({ keyId, status: 'active', limit: 500, offset: 0 });
    res.json({ items: items.map(presentUpload), total });
  });

  // Ends the caller's active sessions (all, or those idle for idle_ms) and removes their staged bytes.
  router.delete('/sessions', async (req, res) => {
    const q = parseInput(clearQuery, req.query, 'query');
    const cutoff = service.clock() - q.idle_ms;
    const keyId = String(res.locals.keyId);
    const { items } = await store.list({
      keyId,
      status: 'active',
      protocol: q.protocol,
      limit: 10_000,
      offset: 0,
    });
    let cleared = 0;
    for (const u of items) {
      if (u.updatedAt > cutoff || service.locks.isHeld(u.id)) continue;
      await service.end(u, 'expired');
      cleared++;
    }
    res.json({ cleared });
  });

  router.get('/uploads', async (req, res) => {
    const q = parseInput(listQuery, req.query, 'query');
    // Finished files are the lab's (as the upload dir is); what another key is still sending is not.
    const { items, total } = await store.list({ ...q, visibleTo: String(res.locals.keyId) });
    res.json({ items: items.map(presentUpload), total, limit: q.limit, offset: q.offset });
  });

  router.get('/uploads/:id', async (req, res) => {
    if (!/^[0-9a-f]{32}$/.test(req.params.id)) throw badRequest('upload ids are 32 hex digits');
    const u = await store.get(req.params.id);
    if (!u || (u.status !== 'complete' && u.keyId !== res.locals.keyId))
      throw notFound(`no upload ${req.params.id}`);
    res.json(presentUpload(u));
  });

  router.get('/stats', async (_req, res) => {
    res.json({ uploads: await store.counts(), completed_bytes: await store.completedBytes() });
  });

  // Bytes uploaded per UTC day, for charts: the last `days` days, today included.
  router.get('/stats/daily', async (req, res) => {
    const { days } = parseInput(dailyQuery, req.query, 'query');
    res.json({ days, series: await store.completedPerDay(days, service.clock()) });
  });

  return router;
}
