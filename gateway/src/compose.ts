import type { Knex, Logger } from '@qlab/kit';
import { createGateway } from './app';
import type { Config } from './config';
import { EventsSocket } from './events-socket';
import { KeyStore } from './keys';

export type GatewaySettings = Pick<
  Config,
  'upstreams' | 'rateLimit' | 'proxyTimeoutMs' | 'aggregateTimeoutMs' | 'mqttUrl' | 'consoleDir'
>;

export interface GatewayComposeDeps {
  /** The key database, migrated (keyMigrations). */
  knex: Knex;
  logger: Logger;
}

/**
 * The one composition root of the gateway: the key store, the events socket (MQTT to
 * WebSockets), and the app with its short proxy path. main.ts (which also makes the first
 * key) and the tests build the gateway here; `close` ends the socket's broker connection.
 */
export function compose(settings: GatewaySettings, deps: GatewayComposeDeps) {
  const keys = new KeyStore(deps.knex);
  const events = new EventsSocket(settings.mqttUrl);
  const gateway = createGateway({ logger: deps.logger, config: settings, keys, events });
  return { keys, handle: gateway.handle, attach: gateway.attach, close: () => events.close() };
}
