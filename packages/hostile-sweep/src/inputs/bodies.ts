import { type RequestSpec, toRaw } from '../cases';
import { NOOP_TASK } from '../fixtures';
import { type Draft, either, type GenContext, refuse, seedFor, someOf, withHeaders } from '../generators';
import { HOSTILE_FILE_NAMES, INVALID_UTF8, WRONG_CONTENT_TYPES } from '../hostile-values';
import { MULTIPART_TYPE, multipartBody, type Part } from '../multipart';
import type { Operation } from '../openapi';
import { plausibleRequest } from '../plausible';
import { LIMITS } from '../stack';
import { tinyZip } from '../zip';

const isTus = (op: Operation) => op.service === 'chunked-upload' && op.serviceTemplate.startsWith('/files');
const isIndexedcp = (op: Operation) => op.service === 'chunked-upload' && op.serviceTemplate === '/upload';
const isJobFilePut = (op: Operation) => op.service === 'job-worker' && op.method === 'PUT';
const isJobCreate = (op: Operation) =>
  op.service === 'job-worker' && op.method === 'POST' && op.serviceTemplate === '/jobs';
const isStoreUpload = (op: Operation) =>
  op.service === 'calibration-store' && /\/upload$/.test(op.serviceTemplate);

/** Wrong and missing Content-Type on every route that reads a body. */
export function contentTypeDrafts(op: Operation, ctx: GenContext): Draft[] {
  const base = plausibleRequest(op, ctx.fx);
  if (base.spec.body === undefined) return [];
  const body = base.body;
  // IndexedCP and job output files take any bytes under any type.
  const anyType = isIndexedcp(op) || isJobFilePut(op);
  const optional = body.kind === 'json' && body.optional;
  return someOf(WRONG_CONTENT_TYPES, 2 + ctx.scale, seedFor(ctx.seed, op.key, 'content-type')).map((ct) => {
    const spec: RequestSpec = { ...base.spec, contentType: ct.value };
    return {
      op,
      cls: 'content-type',
      label: `${body.kind} body with Content-Type ${ct.label}`,
      request: toRaw(spec),
      expect: anyType || optional ? either() : refuse(),
    };
  });
}

/** The limit that applies to a route's body, when the sweep set one small enough to cross. */
function limitOf(op: Operation): number | undefined {
  if (isStoreUpload(op)) return LIMITS.storeUploadBytes;
  if (op.service === 'chunked-upload' && (isIndexedcp(op) || op.method === 'PATCH'))
    return LIMITS.uploadBytes;
  if (isJobFilePut(op)) return LIMITS.jobFileBytes;
  if (/\/bulk$/.test(op.serviceTemplate)) return LIMITS.analyticsBulkBytes;
  if (isJobCreate(op) || (op.service === 'job-worker' && op.method === 'POST')) return 1024 * 1024; // express.json
  if (op.service === 'gateway' && op.template === '/api/keys' && op.method === 'POST') return 16 * 1024;
  return undefined;
}

/** A body just past the route's limit: with an honest length, chunked, and with a lying huge length. */
export function oversizeDrafts(op: Operation, ctx: GenContext): Draft[] {
  const limit = limitOf(op);
  const base = plausibleRequest(op, ctx.fx);
  if (limit === undefined || base.spec.body === undefined) return [];
  const size = limit + 4096;
  let spec: RequestSpec;
  if (base.body.kind === 'multipart') {
    const parts = base.body.parts.map((p) =>
      p.name === 'archive' ? { ...p, data: Buffer.alloc(size, 0x41) } : p,
    );
    spec = { ...base.spec, body: multipartBody(parts) };
  } else if (base.body.kind === 'json') {
    spec = {
      ...base.spec,
      body: Buffer.from(JSON.stringify({ ...base.body.value, hostile_pad: 'p'.repeat(size) })),
    };
  } else if (base.body.kind === 'ndjson') {
    const line = base.spec.body.toString();
    spec = { ...base.spec, body: Buffer.from(line.repeat(Math.ceil(size / line.length))) };
  } else {
    spec = { ...base.spec, body: Buffer.alloc(size, 0x42) };
  }
  const out: Draft[] = [
    {
      op,
      cls: 'oversize',
      label: `${spec.body!.length} bytes, limit ${limit}`,
      request: toRaw(spec),
      expect: refuse({ closeOk: true }),
    },
    {
      op,
      cls: 'oversize',
      label: `${spec.body!.length} bytes chunked (no Content-Length), limit ${limit}`,
      request: toRaw(spec, { chunked: true }),
      expect: refuse({ closeOk: true }),
    },
  ];
  // A Content-Length of 10 GiB with a small body: the length alone must be refused at once.
  const lying = withHeaders(base.spec, [['Content-Length', String(10 * 1024 ** 3)]]);
  out.push({
    op,
    cls: 'oversize',
    label: 'Content-Length 10 GiB, a few bytes sent',
    request: toRaw(lying),
    expect: refuse({ closeOk: true }),
  });
  return out;
}

/** The body cut off: Content-Length larger than what is sent, then FIN. An answer or a close within 10 s. */
export function truncatedDrafts(op: Operation, ctx: GenContext): Draft[] {
  const base = plausibleRequest(op, ctx.fx);
  const body = base.spec.body;
  if (body === undefined) return [];
  // tus keeps what arrived of an interrupted PATCH, by design.
  const expect = isTus(op)
    ? either({ closeOk: true, bareOk: true })
    : refuse({ closeOk: true, bareOk: true });
  const out: Draft[] = [
    {
      op,
      cls: 'truncated',
      label: `half of ${body.length} bytes sent, then FIN`,
      request: toRaw(base.spec, { truncateAt: Math.floor(body.length / 2) }),
      expect,
    },
    {
      op,
      cls: 'truncated',
      label: `all ${body.length} bytes sent, Content-Length ${body.length + 1000}, then FIN`,
      request: {
        ...toRaw(withHeaders(base.spec, [['Content-Length', String(body.length + 1000)]])),
        truncateAt: body.length,
      },
      expect,
    },
  ];
  if (ctx.scale > 1)
    out.push({
      op,
      cls: 'truncated',
      label: 'no body bytes, then FIN',
      request: toRaw(base.spec, { truncateAt: 0 }),
      expect,
    });
  return out;
}

const field = (name: string, value: string | Buffer): Part => ({ name, data: Buffer.from(value) });

/** The parts of a valid multipart request to a route that takes one (store uploads, job creation). */
function multipartParts(
  op: Operation,
  ctx: GenContext,
): { parts: Part[]; file: string; strict: boolean } | undefined {
  const base = plausibleRequest(op, ctx.fx);
  if (base.body.kind === 'multipart') return { parts: base.body.parts, file: 'archive', strict: true };
  if (isJobCreate(op))
    return {
      parts: [
        field('task_type', NOOP_TASK),
        field('params', '{"hostile":true}'),
        { name: 'file', filename: 'in.txt', contentType: 'text/plain', data: Buffer.from('hostile input') },
      ],
      file: 'file',
      strict: false,
    };
  return undefined;
}

/**
 * Multipart: duplicated and missing parts, hostile file names, a body that ends early or
 * never closes, too many fields, archives that are not zips or climb out of their folder.
 * `strict` routes (the store) take exactly one file part and at most 32 fields.
 */
export function multipartDrafts(op: Operation, ctx: GenContext): Draft[] {
  const m = multipartParts(op, ctx);
  if (!m) return [];
  const base = plausibleRequest(op, ctx.fx).spec;
  const out: Draft[] = [];
  const send = (
    label: string,
    parts: Part[],
    expect: Draft['expect'],
    options: { closed?: boolean } = {},
  ) => {
    const spec: RequestSpec = { ...base, body: multipartBody(parts, options), contentType: MULTIPART_TYPE };
    out.push({ op, cls: 'multipart', label, request: toRaw(spec), expect });
  };
  const filePart = m.parts.find((p) => p.name === m.file)!;
  const others = m.parts.filter((p) => p !== filePart);
  const strictOr = (refused: boolean) => (refused ? refuse() : either());

  send(`two "${m.file}" parts`, [...m.parts, { ...filePart, filename: 'second.zip' }], strictOr(m.strict));
  send('a file part under another name', [...m.parts, { ...filePart, name: 'other' }], strictOr(m.strict));
  send(`without "${m.file}"`, others, strictOr(m.strict));
  const firstText = others[0]!;
  send(`"${firstText.name}" twice`, [field(firstText.name, 'first'), ...m.parts], either());
  send(
    `without "${firstText.name}"`,
    m.parts.filter((p) => p !== firstText),
    refuse(),
  );
  send(
    `"${firstText.name}" with a control character`,
    [field(firstText.name, 'x\u0007y'), ...m.parts.filter((p) => p !== firstText)],
    m.strict ? refuse() : either(),
  );
  const bad = someOf(INVALID_UTF8, 1, seedFor(ctx.seed, op.key, 'multipart-utf8'))[0]!;
  send(
    `invalid UTF-8 in "${firstText.name}"`,
    [
      field(firstText.name, Buffer.concat([Buffer.from('x'), bad])),
      ...m.parts.filter((p) => p !== firstText),
    ],
    either(),
  );
  send(
    '70 extra fields',
    [...m.parts, ...Array.from({ length: 70 }, (_, i) => field(`extra${i}`, 'x'))],
    strictOr(m.strict),
  );
  send('final boundary missing', m.parts, refuse(), { closed: false });
  for (const n of someOf(HOSTILE_FILE_NAMES, 4 + ctx.scale, seedFor(ctx.seed, op.key, 'file-names'))) {
    send(`file name ${n.label}`, [...others, { ...filePart, filename: n.name }], either());
  }
  if (!m.strict) {
    const big = { ...filePart, data: Buffer.alloc(LIMITS.jobFileBytes + 4096, 0x43) };
    send(`"${m.file}" larger than JOBS_MAX_FILE_BYTES`, [...others, big], refuse({ closeOk: true }));
  }
  if (m.strict) {
    send(
      'archive is not a zip',
      [...others, { ...filePart, data: Buffer.from('not a zip at all') }],
      refuse(),
    );
    send(
      'zip entry climbing out (../evil.txt)',
      [...others, { ...filePart, data: tinyZip('../evil.txt') }],
      refuse(),
    );
    send(
      'zip entry with an absolute path',
      [...others, { ...filePart, data: tinyZip('/abs/evil.txt') }],
      refuse(),
    );
  }
  // Cut inside the file part, with a Content-Length for the whole body, then FIN.
  const whole = multipartBody(m.parts);
  const cut = whole.indexOf(filePart.data) + Math.max(1, Math.floor(filePart.data.length / 2));
  out.push({
    op,
    cls: 'multipart-truncated',
    label: `cut inside the "${m.file}" part (${cut} of ${whole.length} bytes), then FIN`,
    request: toRaw({ ...base, body: whole, contentType: MULTIPART_TYPE }, { truncateAt: cut }),
    expect: refuse({ closeOk: true, bareOk: true }),
  });
  out.push({
    op,
    cls: 'multipart-truncated',
    label: `cut before the final boundary (${whole.length - 10} of ${whole.length} bytes), then FIN`,
    request: toRaw({ ...base, body: whole, contentType: MULTIPART_TYPE }, { truncateAt: whole.length - 10 }),
    expect: refuse({ closeOk: true, bareOk: true }),
  });
  return out;
}
