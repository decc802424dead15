import type { AddressInfo } from 'node:net';
import { createConnection, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP link between the services and PostgreSQL or Mosquitto that a fault can cut (open
 * connections dropped, new ones refused) or slow down (every chunk held for `latencyMs` each
 * way). It keeps its port, so the services reconnect to the same address.
 */
export class FaultyLink {
  private server?: Server;
  private readonly sockets = new Set<Socket>();
  private latencyMs = 0;
  port = 0;

  private constructor(
    private readonly targetPort: number,
    readonly name: string,
  ) {}

  static async open(name: string, targetPort: number): Promise<FaultyLink> {
    const link = new FaultyLink(targetPort, name);
    await link.listen();
    return link;
  }

  private listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      const server = createServer((client) => this.relay(client));
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => {
        this.port = (server.address() as AddressInfo).port;
        this.server = server;
        resolve();
      });
    });
  }

  private relay(client: Socket): void {
    const upstream = createConnection(this.targetPort, '127.0.0.1');
    this.sockets.add(client);
    this.sockets.add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      this.sockets.delete(client);
      this.sockets.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    const forward = (from: Socket, to: Socket) =>
      from.on('data', (chunk: Buffer) => {
        const send = () => {
          if (!to.destroyed) to.write(chunk);
        };
        if (this.latencyMs > 0) setTimeout(send, this.latencyMs);
        else send();
      });
    forward(client, upstream);
    forward(upstream, client);
  }

  /** Drops every open connection and refuses new ones until `restore`. */
  async cut(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((r) => server.close(() => r()));
  }

  async restore(): Promise<void> {
    if (!this.server) await this.listen();
  }

  /** Every chunk waits this long, each way (0 = none). */
  setLatency(ms: number): void {
    this.latencyMs = ms;
  }

  async close(): Promise<void> {
    await this.cut();
  }
}
