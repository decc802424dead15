import { z } from 'zod';
import type { EventCatalogue } from './catalogue';

/** An AsyncAPI 3.0 document, as plain JSON. */
export interface AsyncApiDocument {
  asyncapi: '3.0.0';
  info: { title: string; version: string; description: string };
  defaultContentType: string;
  servers: Record<string, unknown>;
  channels: Record<string, unknown>;
  operations: Record<string, unknown>;
  components: { messages: Record<string, unknown> };
}

/** JSON Schema (draft 7, the dialect AsyncAPI's own schemas extend) of a zod schema. */
function jsonSchema(schema: z.ZodType): Record<string, unknown> {
  const { $schema: _, ...rest } = z.toJSONSchema(schema, { target: 'draft-7', io: 'input' }) as Record<
    string,
    unknown
  >;
  return rest;
}

/** The structured-mode CloudEvent that carries `data` on the topic. */
function envelope(service: string, type: string, subject: string, data: Record<string, unknown>) {
  return {
    type: 'object',
    required: ['specversion', 'id', 'source', 'type', 'time', 'subject', 'datacontenttype', 'data'],
    additionalProperties: false,
    properties: {
      specversion: { const: '1.0' },
      id: { type: 'string', description: 'Unique per event; a repeat after a reconnect has the same id' },
      source: { const: `/qlab/${service}` },
      type: { const: type },
      time: { type: 'string', format: 'date-time', description: 'When the change happened' },
      subject: { type: 'string', description: `The entity, as \`${subject}\`` },
      datacontenttype: { const: 'application/json' },
      data,
    },
  };
}

/** A key AsyncAPI accepts for channels, operations and components: `<service>.<type>`. */
const keyOf = (service: string, type: string) => `${service}.${type}`;

/**
 * The AsyncAPI 3.0 document of the given catalogues: one channel per event type (its topic
 * `qlab/<service>/<type>`), one `send` operation (QoS 1) and one message, whose payload is the
 * CloudEvent with the declared `data` schema.
 */
export function asyncApiDocument(
  catalogues: EventCatalogue[],
  info: { title: string; description: string; version?: string },
): AsyncApiDocument {
  const doc: AsyncApiDocument = {
    asyncapi: '3.0.0',
    info: { title: info.title, version: info.version ?? '1.0.0', description: info.description },
    defaultContentType: 'application/json',
    servers: {
      broker: {
        host: '127.0.0.1:1883',
        protocol: 'mqtt',
        description:
          'The MQTT broker the services are given in MQTT_URL (pnpm start embeds one on 1883). Delivery is at least once: drop repeats by id.',
      },
    },
    channels: {},
    operations: {},
    components: { messages: {} },
  };
  for (const catalogue of catalogues) {
    for (const [type, spec] of Object.entries(catalogue.events)) {
      const key = keyOf(catalogue.service, type);
      doc.components.messages[key] = {
        name: type,
        title: `${catalogue.service}: ${type}`,
        summary: spec.summary,
        contentType: 'application/json',
        payload: envelope(catalogue.service, type, spec.subject, jsonSchema(spec.data)),
      };
      doc.channels[key] = {
        address: catalogue.topic(type),
        title: type,
        messages: { [type]: { $ref: `#/components/messages/${key}` } },
      };
      doc.operations[`send.${key}`] = {
        action: 'send',
        title: `${catalogue.service} publishes ${type}`,
        summary: spec.summary,
        channel: { $ref: `#/channels/${key}` },
        messages: [{ $ref: `#/channels/${key}/messages/${type}` }],
        bindings: { mqtt: { qos: 1, retain: false, bindingVersion: '0.2.0' } },
      };
    }
  }
  return doc;
}

/** One document of several (the gateway's, of every service's): their channels, operations and messages together. */
export function mergeAsyncApi(
  docs: AsyncApiDocument[],
  info: { title: string; description: string; version?: string },
): AsyncApiDocument {
  const merged = asyncApiDocument([], info);
  for (const d of docs) {
    Object.assign(merged.channels, d.channels);
    Object.assign(merged.operations, d.operations);
    Object.assign(merged.components.messages, d.components.messages);
  }
  return merged;
}

/** The document one service serves at /asyncapi.json: its own catalogue. */
export function serviceAsyncApi(catalogue: EventCatalogue): AsyncApiDocument {
  return asyncApiDocument([catalogue], {
    title: `${catalogue.service} events`,
    description: `The CloudEvents ${catalogue.service} publishes on qlab/${catalogue.service}/<type> (structured JSON, QoS 1), each written to an outbox in the transaction of the change it describes.`,
  });
}
