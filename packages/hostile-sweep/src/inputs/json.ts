import fc from 'fast-check';
import { type RequestSpec, toRaw } from '../cases';
import { type Draft, draw, either, type GenContext, refuse, seedFor, someOf } from '../generators';
import { HOSTILE_NUMBERS, INVALID_UTF8, WRONG_TYPES } from '../hostile-values';
import type { Operation } from '../openapi';
import { type BodyModel, plausibleRequest } from '../plausible';

type JsonModel = Extract<BodyModel, { kind: 'json' }>;

/** JSON text of `value` with some members written as raw JSON text (so 1e400 and NaN survive). */
function jsonText(
  value: Record<string, unknown>,
  raw: Record<string, string> = {},
  drop: string[] = [],
): string {
  const members = Object.entries(value)
    .filter(([k]) => !drop.includes(k))
    .map(([k, v]) => `${JSON.stringify(k)}:${raw[k] ?? JSON.stringify(v)}`);
  for (const [k, v] of Object.entries(raw))
    if (!Object.hasOwn(value, k)) members.push(`${JSON.stringify(k)}:${v}`);
  return `{${members.join(',')}}`;
}

function deepArray(depth: number): string {
  return `${'['.repeat(depth)}${']'.repeat(depth)}`;
}

function deepObject(depth: number): string {
  return `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
}

/** Wrong types, missing and extra members, hostile numbers, deep nesting, broken syntax, bad bytes. */
export function jsonDrafts(op: Operation, ctx: GenContext): Draft[] {
  const base = plausibleRequest(op, ctx.fx);
  if (base.body.kind !== 'json') return [];
  const model: JsonModel = base.body;
  const out: Draft[] = [];
  const seed = seedFor(ctx.seed, op.key, 'json');
  const send = (cls: string, label: string, body: Buffer, expect: Draft['expect']) => {
    const spec: RequestSpec = { ...base.spec, body };
    out.push({ op, cls, label, request: toRaw(spec), expect });
  };
  const text = (s: string) => Buffer.from(s);
  const fields = Object.keys(model.value);
  const needsBody = model.required.length > 0 || !model.optional;

  for (const [i, field] of fields.entries()) {
    const type = model.types[field]!;
    const coerced = model.coerced.includes(field);
    for (const wrong of someOf(WRONG_TYPES[type] ?? [], ctx.scale, seedFor(seed, 'type', field))) {
      send(
        'json-wrong-type',
        `${field} = ${wrong.json} (${wrong.label} for ${type})`,
        text(jsonText(model.value, { [field]: wrong.json })),
        coerced ? either() : refuse(),
      );
    }
    if (type === 'number' || type === 'integer') {
      for (const n of someOf(HOSTILE_NUMBERS, 2 + ctx.scale, seedFor(seed, 'number', field))) {
        const refused = n.refuse === 'always' || (n.refuse === 'integer' && type === 'integer');
        send(
          'json-number',
          `${field} = ${n.json} (${n.label})`,
          text(jsonText(model.value, { [field]: n.json })),
          refused ? refuse() : either(),
        );
      }
    }
    if (type === 'string') {
      const huge = JSON.stringify('s'.repeat(200_000));
      if (i === 0)
        send(
          'json-huge-string',
          `${field} = 200 kB string`,
          text(jsonText(model.value, { [field]: huge })),
          either(),
        );
      const bad = someOf(INVALID_UTF8, 1, seedFor(seed, 'utf8', field))[0]!;
      // Inside a string, decoders replace bad bytes: the value may still be valid.
      const json = jsonText(model.value, { [field]: '"__BAD__"' });
      const [head, tail] = json.split('__BAD__') as [string, string];
      send(
        'json-invalid-utf8',
        `invalid UTF-8 inside ${field}`,
        Buffer.concat([text(head), Buffer.from('x'), bad, text(tail)]),
        either(),
      );
    }
  }
  for (const field of model.required)
    send('json-missing', `without required ${field}`, text(jsonText(model.value, {}, [field])), refuse());
  const extra = draw(fc.jsonValue({ maxDepth: 2 }), seedFor(seed, 'extra'), ctx.scale);
  for (const v of extra)
    send(
      'json-extra',
      `extra member hostile_extra = ${JSON.stringify(v).slice(0, 40)}`,
      text(jsonText(model.value, { hostile_extra: JSON.stringify(v) })),
      either(),
    );
  send(
    'json-extra',
    '__proto__ member',
    text(jsonText(model.value, { ['__proto__']: '{"admin":true,"status":"completed"}' })),
    either(),
  );

  // Nesting: 10,000 levels always, plus a seeded depth.
  const depths = [10_000, ...draw(fc.integer({ min: 1000, max: 30_000 }), seedFor(seed, 'depth'), ctx.scale)];
  const deepField = fields[0]!;
  for (const depth of depths) {
    send(
      'json-deep',
      `${deepField} = array nested ${depth} levels`,
      text(jsonText(model.value, { [deepField]: deepArray(depth) })),
      refuse(),
    );
    send('json-deep', `whole body = array nested ${depth} levels`, text(deepArray(depth)), refuse());
  }
  const objectField = fields.find((f) => model.types[f] === 'object');
  if (objectField) {
    // A deep object is still an object: refusing it is not required, surviving it is.
    send(
      'json-deep',
      `${objectField} = object nested 10000 levels`,
      text(jsonText(model.value, { [objectField]: deepObject(10_000) })),
      either(),
    );
  }

  const valid = jsonText(model.value);
  const syntax: [string, string | Buffer, boolean][] = [
    ['cut short (honest length)', valid.slice(0, Math.max(1, Math.floor(valid.length / 2))), true],
    ['trailing garbage', `${valid}xyz`, true],
    ['single quotes', valid.replace(/"/g, "'"), true],
    ['comment', `/* hostile */${valid}`, true],
    ['top-level null', 'null', true],
    ['top-level number', '1e400', true],
    ['top-level string', '"x"', true],
    ['top-level []', '[]', needsBody],
    ['empty body', '', model.required.length > 0],
    ['{} only', '{}', model.required.length > 0],
    ['NaN member', jsonText(model.value, { hostile_nan: 'NaN' }), true],
    [
      'invalid UTF-8 instead of a colon',
      Buffer.concat([
        text(valid.replace(':', '\u0001').split('\u0001')[0]!),
        Buffer.from([0xff]),
        text(valid.slice(valid.indexOf(':') + 1)),
      ]),
      true,
    ],
    ['UTF-8 BOM first', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), text(valid)]), false],
    [
      'duplicate member',
      valid.replace(/^\{/, `{${JSON.stringify(fields[0])}:${JSON.stringify(model.value[fields[0]!])},`),
      false,
    ],
    ['escaped NUL in a string', jsonText(model.value, { hostile_nul: '"\\u0000"' }), false],
  ];
  for (const [label, body, refused] of syntax)
    send('json-syntax', label, typeof body === 'string' ? text(body) : body, refused ? refuse() : either());
  return out;
}
