import { EventEmitter } from 'node:events';

export type Channel = 'dashboard' | 'jobs' | 'queue';
export const CHANNELS: Channel[] = ['dashboard', 'jobs', 'queue'];

/**
 * In-process fan-out of recorded changes to WebSocket clients (and tests). With replicas, the
 * replica that syncs also hands each message to `relay` (MQTT, see hub-relay.ts), and the
 * others `receive` it, so every replica's sockets and answer cache see every change.
 */
export class LiveHub extends EventEmitter {
  /** Bumped whenever a sync finishes: everything read before may now be out of date. */
  version = 0;
  relay?: (channel: Channel, text: string) => void;

  publish(channel: Channel, message: { type: string; [k: string]: unknown }): void {
    const text = JSON.stringify({ ...message, at: new Date().toISOString() });
    this.deliver(channel, message.type, text);
    this.relay?.(channel, text);
  }

  /** A message another replica published. */
  receive(channel: Channel, text: string): void {
    let type: unknown;
    try {
      type = (JSON.parse(text) as { type?: unknown }).type;
    } catch {
      return;
    }
    if (typeof type === 'string') this.deliver(channel, type, text);
  }

  private deliver(channel: Channel, type: string, text: string): void {
    if (type === 'sync.finished') this.version++;
    this.emit(channel, text);
  }
}
