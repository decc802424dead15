import { z } from 'zod';

/**
 * The headers of `POST /upload`. The seed's contract is `X-Chunk-Index` and `X-File-Name`
 * ("curl -X POST http://localhost:3000/upload -H "X-Chunk-Index: 0" -H "X-File-Name:
 * document.pdf" --data-binary @chunk_0.bin"); the others are qlab's optional additions.
 */
export const chunkHeaders = z.object({
  'x-chunk-index': z
    .string({ error: 'X-Chunk-Index is required' })
    .regex(/^\d{1,9}$/, 'X-Chunk-Index must be a whole number')
    .transform(Number),
  // lib/server.js: `req.headers['x-file-name'] || 'uploaded_file.txt'`.
  'x-file-name': z
    .string()
    .max(4096, 'X-File-Name is longer than 4096 bytes')
    .optional()
    .transform((v) => (v ? v : undefined)),
  'x-chunk-total': z
    .string()
    .regex(/^\d{1,9}$/, 'X-Chunk-Total must be a whole number')
    .transform(Number)
    .refine((n) => n >= 1, 'X-Chunk-Total must be at least 1')
    .optional(),
  'x-chunk-sha256': z
    .string()
    .regex(/^[0-9a-fA-F]{64}$/, 'X-Chunk-SHA256 must be 64 hex digits')
    .transform((s) => s.toLowerCase())
    .optional(),
  'x-upload-id': z
    .string()
    .regex(/^[\w.-]{1,128}$/, 'X-Upload-Id must be 1-128 letters, digits, _ . or -')
    .optional(),
});
