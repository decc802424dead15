import { z } from 'zod';
import { topicFor } from './cloudevent';

/** One kind of event a service publishes. */
export interface EventSpec<S extends z.ZodType = z.ZodType> {
  /** What happened, in one line (the AsyncAPI message's summary). */
  summary: string;
  /** The form of the CloudEvent `subject`, e.g. `uploads/{id}`. */
  subject: string;
  /** The CloudEvent `data`. */
  data: S;
}

export type EventSpecs = Record<string, EventSpec>;

/** The `data` an event type of a catalogue carries. */
export type EventData<E extends EventSpecs, T extends keyof E> = z.input<E[T]['data']>;

/**
 * Every event one service publishes, declared once: the outbox checks what is recorded against
 * it, the service serves it as AsyncAPI (asyncapi.ts) and the gateway merges those documents.
 */
export interface EventCatalogue<E extends EventSpecs = EventSpecs> {
  /** The service's name on the bus: events go to `qlab/<service>/<type>`. */
  service: string;
  events: E;
  /** The MQTT topic of a declared type. */
  topic(type: keyof E & string): string;
  /**
   * Throws when `type` is not declared or `data` does not match its schema: an event the
   * catalogue does not describe is a bug in the service, caught before it is written.
   */
  check(type: string, data: unknown): void;
}

export class UndeclaredEvent extends Error {}

export function defineEvents<E extends EventSpecs>(service: string, events: E): EventCatalogue<E> {
  for (const type of Object.keys(events)) topicFor(service, type);
  return {
    service,
    events,
    topic: (type) => topicFor(service, type),
    check(type, data) {
      const spec = Object.hasOwn(events, type) ? events[type] : undefined;
      if (!spec) throw new UndeclaredEvent(`${service} declares no event "${type}" (src/events.ts)`);
      const parsed = spec.data.safeParse(data);
      if (!parsed.success)
        throw new UndeclaredEvent(
          `${service} ${type}: data does not match its declaration: ${z.prettifyError(parsed.error)}`,
        );
    },
  };
}

/** The members of an event's `data`, in declaration order. */
function dataMembers(spec: EventSpec): string[] {
  const schema = z.toJSONSchema(spec.data, { io: 'input' }) as { properties?: Record<string, unknown> };
  return Object.keys(schema.properties ?? {});
}

/**
 * The Markdown table of events a service README shows: type, subject and the members of
 * `data`. Catalogues whose types coincide (one codebase, several services) share a row.
 * gateway/test/asyncapi.slow.test.ts checks every README holds its table exactly.
 */
export function eventTable(catalogues: EventCatalogue[]): string {
  const rows = new Map<string, string>();
  for (const c of catalogues) {
    for (const [type, spec] of Object.entries(c.events)) {
      const members = dataMembers(spec)
        .map((m) => `\`${m}\``)
        .join(', ');
      rows.set(type, `| \`${type}\` | \`${spec.subject}\` | ${members} | ${spec.summary} |`);
    }
  }
  return ['| type | subject | data | when |', '|---|---|---|---|', ...rows.values()].join('\n');
}
