import { defineEvents } from '@qlab/events';
import { z } from 'zod';
import { DOMAINS, type DomainName } from './domain/domains';

/**
 * Every event one analytics domain publishes, on `qlab/analytics-<domain>/<type>`: each domain
 * is its own service on the bus. Written to the outbox table of the domain's DuckDB file in the
 * transaction of the change (storage/domain-writes.ts checks each against this).
 */
export function analyticsEvents(domain: DomainName) {
  const { record } = DOMAINS[domain];
  return defineEvents(`analytics-${domain}`, {
    [`${record}.ingested`]: {
      summary: `${record === 'run' ? 'Runs' : 'Tasks'} were loaded (one event per load: a record, a batch or a bulk file).`,
      subject: '{domain}',
      data: z
        .object({
          domain: z.literal(domain),
          count: z.number().int().min(0).describe('Records loaded'),
          [`${record}_ids`]: z.array(z.string()).max(100).describe('Their ids, when there are at most 100'),
          batch_ids: z.array(z.string()).max(100),
        })
        .strict(),
    },
    'batch.completed': {
      summary: 'A batch became completed.',
      subject: '{batch_id}',
      data: z
        .object({
          domain: z.literal(domain),
          batch_id: z.string(),
          total: z.number().int().min(0),
          succeeded: z.number().int().min(0),
        })
        .strict(),
    },
  });
}
