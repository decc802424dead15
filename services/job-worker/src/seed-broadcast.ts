import { hostname } from 'node:os';
import { type CloudEvent, type Subscription, subscribeEvents } from '@qlab/events';
import { type Logger, withTimeout } from '@qlab/kit';
import mqtt from 'mqtt';

/**
 * cl-server-shared's subscribers listen on one topic (MQTT_TOPIC, `inference/events`) for job
 * records. With MQTT_TOPIC or BROADCAST_TYPE set, every job lifecycle CloudEvent this service
 * publishes (qlab/job-worker/job.*) is also published there, QoS 1, as the seed's JobRecord:
 * `{job_id, task_type, status, progress, output, error_message}` plus `event` (what happened:
 * queued, started, progress, completed, retrying, failed, cancelled) and `timestamp` (ms).
 * A persistent session relays what was published while the relay was away; a message is
 * acknowledged only once it is re-published. `output` is the job's output on the events that
 * carry it (completed, updated) and null on the others: read it from the completed event.
 */
export interface SeedJobEvent {
  event: string;
  job_id: string;
  task_type: string;
  status: string;
  progress: number;
  output: Record<string, unknown> | null;
  error_message: string | null;
  timestamp: number;
}

export function seedPayload(e: CloudEvent): SeedJobEvent | undefined {
  const d = e.data as Record<string, unknown> | null;
  if (!e.type.startsWith('job.') || !d || typeof d.job_id !== 'string') return undefined;
  return {
    event: e.type.slice('job.'.length),
    job_id: d.job_id,
    task_type: String(d.task_type ?? ''),
    status: String(d.status ?? ''),
    progress: typeof d.progress === 'number' ? d.progress : 0,
    output: (d.output as Record<string, unknown> | undefined) ?? null,
    error_message: typeof d.error_message === 'string' ? d.error_message : null,
    timestamp: Date.parse(e.time),
  };
}

export async function startSeedBroadcast(options: {
  mqttUrl: string;
  topic: string;
  logger: Logger;
  clientId?: string;
}): Promise<{ close(): Promise<void> }> {
  const clientId = options.clientId ?? `job-worker-seed-relay-${hostname()}`;
  // A client of its own to publish with: mqtt.js reads one incoming packet at a time, so
  // awaiting a PUBACK on the subscribing client, inside its message handler, would never end.
  const publisher = await mqtt.connectAsync(options.mqttUrl, {
    clientId: `${clientId}-pub`,
    reconnectPeriod: 1000,
  });
  let sub: Subscription;
  try {
    sub = await subscribeEvents({
      mqttUrl: options.mqttUrl,
      clientId,
      topics: ['qlab/job-worker/#'],
      logger: options.logger,
      onEvent: async (event) => {
        const payload = seedPayload(event);
        if (!payload) return;
        // A publish the broker never acknowledges must not hold the relay for ever: failing it
        // lets the subscriber retry, then dead-letter (packages/events/README.md).
        await withTimeout(
          publisher.publishAsync(options.topic, JSON.stringify(payload), { qos: 1 }),
          10_000,
          'the broker did not acknowledge the relayed event within 10 s',
        );
      },
    });
  } catch (err) {
    await publisher.endAsync();
    throw err;
  }
  options.logger.info({ topic: options.topic }, 'job events are also published in the seed shape');
  return {
    async close() {
      await sub.close();
      await publisher.endAsync();
    },
  };
}
