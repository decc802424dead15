import { EventEmitter } from 'node:events';

export type Channel = 'dashboard' | 'jobs' | 'queue';

/** In-process fan-out of recorded changes to WebSocket clients (and tests). */
export class LiveHub extends EventEmitter {
  /** Bumped whenever a sync finishes: everything read before may now be out of date. */
  version = 0;

  publish(channel: Channel, message: { type: string; [k: string]: unknown }): void {
    if (message.type === 'sync.finished') this.version++;
    this.emit(channel, JSON.stringify({ ...message, at: new Date().toISOString() }));
  }
}
