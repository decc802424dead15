import type { Knex, Logger } from '@qlab/kit';
import { createGateway } from './app';
import type { Config } from './config';
import { EventsSocket } from './events-socket';
import { KeyStore } from './keys';
import { createRateLimiter } from './rate-limit';

export type GatewaySettings = Pick<
  Config,
  'upstreams' | 'rateLimit' | 'proxyTimeoutMs' | 'aggregateTimeoutMs' | 'mqttUrl' | 'consoleDir'
> &
  Partial<Pick<Config, 'redisUrl'>>;

export interface GatewayComposeDeps {
  /** The key database, migrated (keyMigrations): SQLite, or PostgreSQL shared by replicas. */
  knex: Knex;
  logger: Logger;
}

/**
 * The one composition root of the gateway: the key store, the events socket (MQTT to
 * WebSockets), and the app with its short proxy path. main.ts (which also makes the first
 * key) and the tests build the gateway here. On PostgreSQL the key store listens for other
 * replicas' revocations; with `redisUrl` the rate limits are shared. `close` ends the broker,
 * database-listener and Redis connections.
 */
export function compose(settings: GatewaySettings, deps: GatewayComposeDeps) {
  const keys = new KeyStore(deps.knex);
  keys.listenForRevocations(deps.logger);
  const limiter = createRateLimiter(settings.rateLimit, settings.redisUrl, deps.logger);
  const events = new EventsSocket(settings.mqttUrl);
  const gateway = createGateway({ logger: deps.logger, config: settings, keys, limiter, events });
  return {
    keys,
    handle: gateway.handle,
    attach: gateway.attach,
    /** Waits (at most 2 s) for the shared rate-limit counters before serving. */
    ready: () => limiter.ready(2000),
    close: async () => {
      await Promise.all([events.close(), keys.close(), limiter.close(), gateway.close()]);
    },
  };
}
