import { type RequestSpec, toRaw } from '../cases';
import { FIXTURE_MODEL, SUCCESS_STATUS } from '../fixtures';
import { type Draft, either, type GenContext, refuse, seedFor, someOf } from '../generators';
import { INVALID_UTF8 } from '../hostile-values';
import type { Operation } from '../openapi';
import { domainOf, plausibleRequest } from '../plausible';

/**
 * Bulk NDJSON and CSV loads: a bad row is rejected with its line number (200 or 201 with the
 * report) or the whole file is refused (4xx); what is judged is that nothing breaks. Where the
 * README promises a refusal (unknown columns, ?strict=true with a bad row) a 4xx is required.
 */
export function bulkDrafts(op: Operation, ctx: GenContext): Draft[] {
  if (!/\/bulk$/.test(op.serviceTemplate)) return [];
  const base = plausibleRequest(op, ctx.fx).spec;
  const d = domainOf(op);
  const good = JSON.stringify({ model: FIXTURE_MODEL, status: SUCCESS_STATUS[d], hardware: 'cpu' });
  const bad = someOf(INVALID_UTF8, 2, seedFor(ctx.seed, op.key, 'bulk-utf8'));
  const b = (...parts: (string | Buffer)[]) =>
    Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : p)));
  const ndjson = 'application/x-ndjson';
  const cases: [string, Buffer, string, Draft['expect'], string[]?][] = [
    [
      'invalid UTF-8 inside a string',
      b(`${good}\n{"model":"`, bad[0]!, `","status":"${SUCCESS_STATUS[d]}"}\n`),
      ndjson,
      either(),
    ],
    ['a line of invalid UTF-8 bytes', b(`${good}\n`, bad[1] ?? bad[0]!, bad[0]!, '\n'), ndjson, either()],
    ['a line that is not JSON', b(`${good}\n{"model": nope}\n`), ndjson, either()],
    ['lines that are arrays and numbers', b(`[1,2]\n1e400\nnull\n${good}\n`), ndjson, either()],
    ['a wrong type (model: 12)', b(`{"model":12,"status":"${SUCCESS_STATUS[d]}"}\n`), ndjson, either()],
    [
      'an unknown column in clean NDJSON',
      b(`{"model":"m","status":"${SUCCESS_STATUS[d]}","hostile_column":1}\n`),
      ndjson,
      refuse(),
    ],
    [
      'a line nested 10000 levels',
      b(`${good}\n${'['.repeat(10_000)}${']'.repeat(10_000)}\n`),
      ndjson,
      either(),
    ],
    [
      '1e400 in the metric',
      b(`{"model":"m","status":"${SUCCESS_STATUS[d]}","duration_ms":1e400}\n`),
      ndjson,
      either(),
    ],
    ['a bad row with ?strict=true', b(`${good}\n{"model": nope}\n`), ndjson, refuse(), ['strict=true']],
    [
      'CRLF line ends and a BOM',
      b(Buffer.from([0xef, 0xbb, 0xbf]), `${good}\r\n${good}\r\n`),
      ndjson,
      either(),
    ],
    [
      'the same id twice',
      b(
        `{"${d === 'generator' ? 'task_id' : 'run_id'}":"hostile-dup","model":"m","status":"${SUCCESS_STATUS[d]}"}\n`.repeat(
          2,
        ),
      ),
      ndjson,
      either(),
    ],
    ['empty body', b(''), ndjson, either()],
    ['CSV with invalid UTF-8', b('model,status\n', bad[0]!, `,${SUCCESS_STATUS[d]}\n`), 'text/csv', either()],
    [
      'CSV header naming an unknown column',
      b(`model,status,hostile_column\nm,${SUCCESS_STATUS[d]},1\n`),
      'text/csv',
      refuse(),
    ],
    ['CSV with an unbalanced quote', b(`model,status\n"m,${SUCCESS_STATUS[d]}\n`), 'text/csv', either()],
    ['CSV formula cells', b(`model,status\n=cmd|' /C calc'!A0,${SUCCESS_STATUS[d]}\n`), 'text/csv', either()],
    ['CSV without rows', b('model,status\n'), 'text/csv', either()],
  ];
  return cases.map(([label, body, type, expect, query]) => {
    const spec: RequestSpec = { ...base, body, contentType: type, query: [...base.query, ...(query ?? [])] };
    return { op, cls: 'bulk-body', label, request: toRaw(spec), expect };
  });
}
