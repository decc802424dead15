import type { AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:net';
import type { Logger } from '@qlab/kit';
import { createBroker } from 'aedes';

export interface EmbeddedBroker {
  url: string;
  port: number;
  close(): Promise<void>;
}

/**
 * An in-process MQTT broker (aedes) for the local default stack and for tests. It keeps
 * sessions in memory: persistent sessions survive client reconnects, not a broker restart.
 * Deployment uses Mosquitto (infra/mosquitto).
 */
export async function startEmbeddedBroker(options: { port?: number; host?: string; logger?: Logger } = {}) {
  const broker = createBroker();
  const server: Server = createServer(broker.handle);
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 1883, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  options.logger?.info({ port }, 'embedded MQTT broker listening');
  let closing: Promise<void> | undefined;
  return {
    url: `mqtt://${host}:${port}`,
    port,
    close() {
      closing ??= new Promise<void>((resolve) => {
        broker.close(() => server.close(() => resolve()));
      });
      return closing;
    },
  } satisfies EmbeddedBroker;
}
