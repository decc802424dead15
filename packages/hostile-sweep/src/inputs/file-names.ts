import { toRaw } from '../cases';
import { type Draft, either, type GenContext, seedFor, someOf, withHeaders } from '../generators';
import { HOSTILE_FILE_NAMES } from '../hostile-values';
import type { Operation } from '../openapi';
import { plausibleRequest } from '../plausible';

/**
 * Hostile names where chunked-upload takes a client's file name: IndexedCP's X-File-Name and
 * tus's Upload-Metadata filename. In the default path mode (ignore) names are cleaned, so a 2xx
 * is right; that no file lands outside the upload dir is checked after the sweep (escapes).
 */
export function fileNameDrafts(op: Operation, ctx: GenContext): Draft[] {
  if (op.service !== 'chunked-upload' || op.method !== 'POST') return [];
  const seed = seedFor(ctx.seed, op.key, 'file-name');
  const out: Draft[] = [];
  if (op.serviceTemplate === '/upload') {
    // A header cannot carry control characters (the HTTP parser refuses them before the service).
    const sendable = HOSTILE_FILE_NAMES.filter((n) => !n.name.some((b) => b < 0x20 || b === 0x7f));
    for (const n of someOf(sendable, 5 + ctx.scale, seed)) {
      const spec = withHeaders(plausibleRequest(op, ctx.fx).spec, [['X-File-Name', n.name]]);
      out.push({
        op,
        cls: 'file-name',
        label: `X-File-Name ${n.label}`,
        request: toRaw(spec),
        expect: either(),
      });
    }
  }
  if (op.serviceTemplate === '/files') {
    for (const n of someOf(HOSTILE_FILE_NAMES, 5 + ctx.scale, seed)) {
      const meta = `filename ${n.name.toString('base64')}`;
      // Creation with upload: the 5 bytes complete it, so the file is published under its name.
      const spec = {
        ...withHeaders(plausibleRequest(op, ctx.fx).spec, [['Upload-Metadata', meta]]),
        body: Buffer.from('hello'),
        contentType: 'application/offset+octet-stream',
      };
      out.push({
        op,
        cls: 'file-name',
        label: `Upload-Metadata filename ${n.label}`,
        request: toRaw(spec),
        expect: either(),
      });
    }
  }
  return out;
}
