import { defineEvents } from '@qlab/events';
import { z } from 'zod';

/** Every event chunked-upload publishes, on `qlab/chunked-upload/<type>`. */
export const uploadEvents = defineEvents('chunked-upload', {
  'upload.completed': {
    summary:
      'An upload (tus or IndexedCP) is whole and published in the upload folder; once per upload, in the transaction that marks it complete.',
    subject: 'uploads/{id}',
    data: z
      .object({
        id: z.string().describe('The upload id (tus: the last segment of its Location)'),
        protocol: z.enum(['tus', 'indexedcp']),
        filename: z.string().describe('Where it was published, relative to the upload folder'),
        clientFilename: z.string().describe('The name the client gave'),
        size: z.number().int().min(0),
        metadata: z.record(z.string(), z.string()).describe('tus Upload-Metadata, decoded'),
      })
      .strict(),
  },
});
export type UploadEvents = typeof uploadEvents.events;
