import { type RequestSpec, toRaw } from './cases';
import type { Fixtures } from './fixtures';
import { type Draft, either, refuse, withHeaders } from './generators';
import { KEY_PATH_VARIANTS } from './inputs/paths';
import type { Operation } from './openapi';
import { authHeaders, type Caller, plausibleRequest } from './plausible';
import type { RawResult } from './raw-http';
import { type HostileStack, type KeyName, serviceToken } from './stack';

export const CALLERS = ['none', 'read', 'write', 'admin'] as const;
type MatrixCaller = (typeof CALLERS)[number];

const SCOPES: Record<KeyName, KeyName[]> = {
  read: ['read'],
  write: ['read', 'write'],
  admin: ['read', 'write', 'admin'],
};

/** One row of the printed matrix: its cells are the ids of the inputs sent. */
export interface MatrixRow {
  route: string;
  method: string;
  expected: string;
  cells: Partial<Record<MatrixCaller, Draft>>;
}

function expectation(op: Operation, caller: MatrixCaller): Draft['expect'] {
  if (op.open) return either({ authOnly: true });
  if (caller === 'none') return refuse({ exact: [401], noChange: true, authOnly: true });
  if (!SCOPES[caller].includes(op.scope!)) return refuse({ exact: [403], noChange: true, authOnly: true });
  return either({ forbid: [401, 403], authOnly: true });
}

/** Every operation of the gateway's merged document × {no key, read, write, admin}. */
export function matrixDrafts(ops: Operation[], fx: Fixtures): { drafts: Draft[]; rows: MatrixRow[] } {
  const drafts: Draft[] = [];
  const rows: MatrixRow[] = [];
  for (const op of ops) {
    const row: MatrixRow = {
      route: op.template,
      method: op.method,
      expected: op.open ? 'open' : `${op.scope} (${op.scopeSource})`,
      cells: {},
    };
    for (const caller of CALLERS) {
      const who: Caller = caller === 'none' ? 'none' : caller;
      const spec = plausibleRequest(op, fx, who, { absent: op.method === 'DELETE' }).spec;
      const d: Draft = {
        op,
        cls: 'auth-matrix',
        label: `${caller} key`,
        request: toRaw(spec),
        expect: expectation(op, caller),
      };
      row.cells[caller] = d;
      drafts.push(d);
    }
    rows.push(row);
  }
  return { drafts, rows };
}

/** The admin-only /api/keys routes written the ways a router and an auth check may read differently, with every key. */
export function keyVariantDrafts(
  ops: Operation[],
  fx: Fixtures,
  gatewayPort: number,
): { drafts: Draft[]; rows: MatrixRow[] } {
  const drafts: Draft[] = [];
  const rows: MatrixRow[] = [];
  // The admin-only key routes (GET /api/keys/me answers any key its own key: the matrix covers it).
  const keyOps = ops.filter((o) => o.template.startsWith('/api/keys') && o.scope === 'admin');
  for (const op of keyOps) {
    for (const v of KEY_PATH_VARIANTS) {
      const row: MatrixRow = {
        route: v.label === 'as documented' ? op.template : `${op.template} as ${v.label}`,
        method: op.method,
        expected: 'admin',
        cells: {},
      };
      for (const caller of CALLERS) {
        // A weak key aims at the fixture key (a bypass would revoke it); admin at an absent one.
        const absent = caller === 'admin' && op.method === 'DELETE';
        const base = plausibleRequest(op, fx, caller === 'none' ? 'none' : caller, { absent });
        let spec: RequestSpec = base.spec;
        if (op.method === 'POST')
          spec = {
            ...spec,
            body: Buffer.from(
              JSON.stringify({ name: `hostile-minted-${caller}`, scopes: ['read', 'write', 'admin'] }),
            ),
          };
        const raw = toRaw(spec);
        raw.target = v.target(spec.path, gatewayPort);
        const documented = v.label === 'as documented';
        const expect =
          caller === 'admin'
            ? either()
            : refuse({ noChange: true, exact: documented ? [caller === 'none' ? 401 : 403] : undefined });
        const d: Draft = {
          op,
          cls: 'auth-key-path',
          label: `${v.label}, ${caller} key`,
          request: raw,
          expect,
        };
        row.cells[caller] = d;
        drafts.push(d);
      }
      rows.push(row);
    }
  }
  return { drafts, rows };
}

/**
 * A read key sending GET or POST with X-HTTP-Method-Override DELETE/PATCH/POST to a fresh tus
 * upload through the gateway: whatever the answer, the upload must be as it was.
 */
export function overrideCheckDrafts(ops: Operation[], stack: HostileStack): Draft[] {
  const op =
    ops.find((o) => o.template === '/api/uploads/files/{id}' && o.method === 'HEAD') ??
    ops.find((o) => o.template.startsWith('/api/uploads/files'));
  if (!op) return [];
  const drafts: Draft[] = [];
  const upload = stack.get('chunked-upload');
  const direct = { Authorization: `Bearer ${serviceToken('chunked-upload')}`, 'Tus-Resumable': '1.0.0' };
  for (const method of ['GET', 'POST']) {
    for (const override of ['DELETE', 'PATCH', 'POST']) {
      let id = '';
      const headers: [string, string][] = [
        ...authHeaders(op, 'read'),
        ['X-HTTP-Method-Override', override],
        ['Tus-Resumable', '1.0.0'],
        ['Upload-Offset', '0'],
        ['Upload-Length', '5'],
      ];
      const spec = withHeaders(
        {
          method,
          path: '/api/uploads/files/pending',
          query: [],
          headers: [],
          body: Buffer.from('hello'),
          contentType: 'application/offset+octet-stream',
        },
        headers,
      );
      const d: Draft = {
        op: { ...op, method, key: `gateway ${method} /api/uploads/files/{id}` },
        cls: 'override-read-key',
        label: `${method} + X-HTTP-Method-Override: ${override}, read key`,
        request: toRaw(spec),
        // POST needs write; GET may pass the key check, but must not act as the override says.
        expect: method === 'POST' ? refuse({ exact: [403], noChange: true }) : either({ noChange: true }),
        prepare: async () => {
          const res = await fetch(`${upload.url}/files`, {
            method: 'POST',
            headers: { ...direct, 'Upload-Length': '100' },
            signal: AbortSignal.timeout(10_000),
          });
          id = (res.headers.get('location') ?? '').split('/').pop() ?? '';
          d.request.target = `/api/uploads/files/${id}`;
        },
        verify: async () => {
          const res = await fetch(`${upload.url}/files/${id}`, {
            method: 'HEAD',
            headers: direct,
            signal: AbortSignal.timeout(10_000),
          });
          const offset = res.headers.get('upload-offset');
          if (res.status !== 200 || offset !== '0')
            return `the upload ${id} answers HEAD with ${res.status}, Upload-Offset ${offset} (before: 200, 0)`;
          return undefined;
        },
      };
      drafts.push(d);
    }
  }
  return drafts;
}

function cell(r: RawResult | undefined, wrong: boolean): string {
  const text =
    r === undefined ? '-' : r.kind === 'answer' ? String(r.status) : r.kind === 'timeout' ? 'T/O' : r.kind;
  return wrong ? `${text}!` : text;
}

/** The matrix as a table; a cell ending in ! is a wrong answer. */
export function renderMatrix(
  rows: MatrixRow[],
  results: Map<number, RawResult>,
  wrongIds: Set<number>,
): string {
  const idOf = (d: Draft | undefined) => (d as { id?: number } | undefined)?.id;
  const table = rows.map((row) => [
    row.route,
    row.method,
    row.expected,
    ...CALLERS.map((c) => {
      const id = idOf(row.cells[c]);
      return cell(id === undefined ? undefined : results.get(id), id !== undefined && wrongIds.has(id));
    }),
  ]);
  const head = ['route', 'method', 'needs', ...CALLERS];
  const widths = head.map((h, i) => Math.max(h.length, ...table.map((r) => r[i]!.length)));
  const line = (r: string[]) =>
    r
      .map((v, i) => v.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...table.map(line)].join('\n');
}
