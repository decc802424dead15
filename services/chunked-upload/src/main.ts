import { openBlobStore } from '@qlab/blob-store';
import { startServiceEvents } from '@qlab/events';
import {
  createLogger,
  Lifecycle,
  listen,
  openDatabase,
  parseDbUrl,
  privateDir,
  runMain,
  stopOnSignals,
} from '@qlab/kit';
import { generatedKey } from './api-keys';
import { compose } from './compose';
import { loadUploadConfig } from './config';
import { uploadEvents } from './events';
import { migrations } from './storage/migrations';

runMain('chunked-upload', async () => {
  const config = loadUploadConfig();
  const logger = createLogger({ service: 'chunked-upload', level: config.logLevel });
  const life = new Lifecycle(logger);
  stopOnSignals(life, logger);
  privateDir(config.dataDir);

  const knex = await openDatabase({ target: parseDbUrl(config.dbUrl), migrations, logger });
  life.add('database', () => knex.destroy());
  let apiKeys = config.apiKeys ?? [];
  if (!config.apiKeys && !config.gatewayToken) {
    // The seed makes up a key; the log shows only its start (logs travel further than files).
    const file = `${config.dataDir}/generated-api-key`;
    const key = await generatedKey(config.dataDir);
    apiKeys = [key];
    logger.warn(
      { file, keyPrefix: `${key.slice(0, 6)}…` },
      'UPLOAD_API_KEYS is not set: using a generated API key (read it from the file)',
    );
  }
  const events = startServiceEvents({
    catalogue: uploadEvents,
    knex,
    mqttUrl: config.mqttUrl,
    logger,
    lifecycle: life,
  });

  let port = config.port;
  const uploads = await compose(
    {
      dataDir: config.dataDir,
      uploadDir: config.uploadDir,
      blobStore: config.blobStoreUrl ? await openBlobStore(config.blobStoreUrl) : undefined,
      directIo: config.directIo,
      apiKeys,
      gatewayToken: config.gatewayToken,
      encryption: config.encryption,
      policy: {
        pathMode: config.pathMode,
        windowsSafeNames: config.windowsSafeNames,
        maxBytes: config.maxBytes,
        expireAfterMs: config.expireAfterMs,
        idleCompleteAfterMs: config.idleCompleteAfterMs,
        maxSessionsPerKey: config.maxSessionsPerKey,
        maxOpenBytesPerKey: config.maxOpenBytesPerKey,
      },
    },
    { knex, logger, outbox: events?.outbox, port: () => port },
  );
  life.add('data files', uploads.close);
  life.add('sweeps', uploads.startSweeps());

  const server = await listen(uploads.app, { port: config.port, host: config.host });
  port = server.port;
  life.add('http server', () => server.close());
  logger.info(
    {
      url: server.url,
      uploadDir: uploads.files.uploadDir,
      pathMode: config.pathMode,
      directIo: uploads.files.directWrites,
    },
    'chunked-upload listening',
  );
});
