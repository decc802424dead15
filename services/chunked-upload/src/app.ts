import { type Outbox, serviceAsyncApi } from '@qlab/events';
import { createServiceApp, type Logger } from '@qlab/kit';
import type { Express } from 'express';
import { apiKeyAuth } from './api-keys';
import type { Locks } from './domain/upload-locks';
import { type UploadPolicy, UploadService } from './domain/upload-service';
import { type UploadEvents, uploadEvents } from './events';
import { openapi } from './openapi';
import { TUS_EXPOSED_HEADERS } from './protocol/tus/headers';
import { adminRoutes } from './routes/admin';
import { indexedcpRoutes } from './routes/indexedcp';
import { tusRoutes } from './routes/tus';
import type { ServerKeys } from './storage/server-keys';
import type { UploadBytes } from './storage/upload-bytes';
import type { UploadStore } from './storage/upload-store';

export interface AppDeps {
  logger: Logger;
  store: UploadStore;
  files: UploadBytes;
  outbox?: Outbox<UploadEvents>;
  apiKeys: string[];
  /** See UPLOAD_GATEWAY_TOKEN. */
  gatewayToken?: string;
  policy: UploadPolicy;
  /** One writer per upload across replicas (compose gives ReplicaUploadLocks on PostgreSQL). */
  locks?: Locks;
  /** Encrypted uploads (UPLOAD_ENCRYPTION): the server's key pairs. */
  encryption?: ServerKeys;
  /** The port actually listened on (for /info). */
  port: () => number;
  now?: () => number;
  readiness?: () => Promise<void>;
}

export function createApp(deps: AppDeps): { app: Express; service: UploadService } {
  const base = createServiceApp({
    service: 'chunked-upload',
    logger: deps.logger,
    openapi,
    asyncapi: serviceAsyncApi(uploadEvents),
    parseBodies: false,
    corsExposedHeaders: TUS_EXPOSED_HEADERS,
    readiness: deps.readiness,
    // The public key is public, as upstream serves it: clients fetch it before they have a stream.
    auth: apiKeyAuth(deps.apiKeys, deps.gatewayToken, deps.encryption ? ['/public-key'] : []),
  });
  const service = new UploadService({
    store: deps.store,
    files: deps.files,
    outbox: deps.outbox,
    logger: deps.logger,
    policy: deps.policy,
    locks: deps.locks,
    now: deps.now,
  });
  const { app } = base;
  app.use(indexedcpRoutes(service, deps.encryption));
  app.use('/files', tusRoutes(service));
  app.use(
    adminRoutes(service, {
      port: deps.port,
      uploadDir: deps.files.uploadDir,
      apiKeysCount: deps.apiKeys.length,
      encryption: deps.encryption,
    }),
  );
  return { app: base.finish(), service };
}
