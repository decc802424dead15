import mqtt, { type MqttClient } from 'mqtt';

export interface SeenEvent {
  id: string;
  type: string;
  subject: string;
  raw: string;
}

/**
 * A subscriber as a lab would run one: persistent session (clean: false), QoS 1, every qlab
 * topic. It keeps every delivery; duplicates by id are counted (at least once is the promise,
 * handling once is the subscriber's job: it handles an id once).
 */
export class EventLedger {
  readonly byId = new Map<string, SeenEvent>();
  deliveries = 0;
  private client?: MqttClient;

  async start(url: string, clientId: string): Promise<void> {
    this.client = await mqtt.connectAsync(url, { clientId, clean: false, reconnectPeriod: 500 });
    this.client.on('message', (_topic, payload) => {
      this.deliveries++;
      try {
        const e = JSON.parse(payload.toString()) as { id: string; type: string; subject: string };
        if (!this.byId.has(e.id))
          this.byId.set(e.id, { id: e.id, type: e.type, subject: e.subject, raw: payload.toString() });
      } catch {
        // not a CloudEvent: not ours to judge here
      }
    });
    this.client.on('error', () => undefined);
    await this.client.subscribeAsync('qlab/#', { qos: 1 });
  }

  of(type: string): SeenEvent[] {
    return [...this.byId.values()].filter((e) => e.type === type);
  }

  async stop(): Promise<void> {
    await this.client?.endAsync(true);
  }
}
