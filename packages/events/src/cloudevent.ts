import { randomUUID } from 'node:crypto';
import { z } from 'zod';

/** A CloudEvents 1.0 event in structured JSON mode, as every qlab service publishes it. */
export interface CloudEvent<T = unknown> {
  specversion: '1.0';
  id: string;
  /** URI-reference naming the producer, e.g. `/qlab/calibration-store`. */
  source: string;
  /** e.g. `calibration.uploaded`, `job.completed`. */
  type: string;
  /** RFC 3339 timestamp. */
  time: string;
  /** The entity the event is about, e.g. `calibrations/42`. */
  subject: string;
  datacontenttype: 'application/json';
  data: T;
}

export const cloudEventSchema = z.object({
  specversion: z.literal('1.0'),
  id: z.string().min(1),
  source: z.string().min(1),
  type: z.string().min(1),
  time: z.string().min(1),
  subject: z.string(),
  datacontenttype: z.string().optional(),
  data: z.unknown(),
});

export function createEvent<T>(service: string, type: string, subject: string, data: T): CloudEvent<T> {
  return {
    specversion: '1.0',
    id: randomUUID(),
    source: `/qlab/${service}`,
    type,
    time: new Date().toISOString(),
    subject,
    datacontenttype: 'application/json',
    data,
  };
}

/** The MQTT topic of an event: `qlab/<service>/<type>`. */
export function topicFor(service: string, type: string): string {
  if (!/^[\w.-]+$/.test(service) || !/^[\w.-]+$/.test(type))
    throw new Error(`bad topic part: ${service}/${type}`);
  return `qlab/${service}/${type}`;
}
