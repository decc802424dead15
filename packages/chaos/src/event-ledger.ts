import { type Subscription, subscribeEvents } from '@qlab/events';

export interface SeenEvent {
  id: string;
  type: string;
  subject: string;
  raw: string;
}

/**
 * A subscriber as a qlab service runs one: the events package's subscribeEvents (persistent
 * session, QoS 1, every qlab topic, repeats dropped by id). What its handler is given is what
 * was handled; an id handled twice breaks its promise and is recorded as such.
 */
export class EventLedger {
  readonly byId = new Map<string, SeenEvent>();
  /** Ids whose handler ran more than once. */
  readonly handledTwice: string[] = [];
  private sub?: Subscription;

  async start(url: string, clientId: string): Promise<void> {
    this.sub = await subscribeEvents({
      mqttUrl: url,
      clientId,
      topics: ['qlab/#'],
      onEvent: (event) => {
        if (this.byId.has(event.id)) this.handledTwice.push(event.id);
        else
          this.byId.set(event.id, {
            id: event.id,
            type: event.type,
            subject: event.subject,
            raw: JSON.stringify(event),
          });
      },
    });
  }

  /** Deliveries the subscriber dropped as repeats (at least once means some are expected). */
  get duplicatesDropped(): number {
    return this.sub?.duplicates ?? 0;
  }

  of(type: string): SeenEvent[] {
    return [...this.byId.values()].filter((e) => e.type === type);
  }

  async stop(): Promise<void> {
    await this.sub?.close();
  }
}
