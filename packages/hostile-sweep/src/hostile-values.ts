/**
 * The curated hostile values every run includes; fast-check adds random ones around them
 * (see generators.ts). Each list is small on purpose: it is crossed with every operation.
 */

/** Invalid UTF-8: a lone continuation byte, an overlong '/', a surrogate, a 5-byte lead, a cut sequence. */
export const INVALID_UTF8: Buffer[] = [
  Buffer.from([0xff]),
  Buffer.from([0xc0, 0xaf]),
  Buffer.from([0xed, 0xa0, 0x80]),
  Buffer.from([0xf8, 0x88, 0x80, 0x80, 0x80]),
  Buffer.from([0xe2, 0x82]),
  Buffer.from([0x80, 0xbf, 0xfe]),
];

/** Hostile file names, as raw bytes (NUL and invalid UTF-8 included). */
export const HOSTILE_FILE_NAMES: { label: string; name: Buffer }[] = [
  { label: 'parent traversal', name: Buffer.from('../../x') },
  { label: 'deep traversal', name: Buffer.from('../../../../../../tmp/hostile-escape') },
  { label: 'backslash traversal', name: Buffer.from('..\\x') },
  { label: 'NUL byte', name: Buffer.from('x\u0000.txt') },
  { label: '300-byte name', name: Buffer.from(`${'n'.repeat(296)}.txt`) },
  { label: 'reserved CON', name: Buffer.from('CON') },
  { label: 'reserved nul.txt', name: Buffer.from('nul.txt') },
  { label: 'full-width dots (U+FF0E)', name: Buffer.from('\uff0e\uff0e/\uff0e\uff0e/x') },
  { label: 'full-width solidus (U+FF0F)', name: Buffer.from('..\uff0fx') },
  { label: 'absolute path', name: Buffer.from('/etc/passwd') },
  { label: 'drive path', name: Buffer.from('C:\\Windows\\x') },
  { label: 'UNC path', name: Buffer.from('\\\\host\\share\\x') },
  { label: 'dot', name: Buffer.from('.') },
  { label: 'dot-dot', name: Buffer.from('..') },
  { label: 'empty', name: Buffer.from('') },
  {
    label: 'invalid UTF-8',
    name: Buffer.concat([Buffer.from('x'), Buffer.from([0xff, 0xfe]), Buffer.from('.txt')]),
  },
  {
    label: 'overlong slash',
    name: Buffer.concat([Buffer.from('..'), Buffer.from([0xc0, 0xaf]), Buffer.from('x')]),
  },
  { label: 'control characters', name: Buffer.from('x\r\ny\t\u001b.txt') },
  { label: 'trailing dot and space', name: Buffer.from('x.txt. ') },
  { label: 'RTL override', name: Buffer.from('x\u202etxt.exe') },
];

/** Path segments for a path parameter, percent-encoded as they go on the wire. */
export const HOSTILE_SEGMENTS: { label: string; raw: string }[] = [
  { label: 'dot-dot', raw: '..' },
  { label: 'traversal', raw: '../../x' },
  { label: 'encoded traversal', raw: '..%2F..%2Fx' },
  { label: 'encoded dots', raw: '%2e%2e' },
  { label: 'double-encoded dots', raw: '%252e%252e' },
  { label: 'encoded backslash traversal', raw: '..%5Cx' },
  { label: 'NUL', raw: 'x%00y' },
  { label: 'invalid UTF-8 (encoded)', raw: '%ff%fe' },
  { label: 'overlong slash (encoded)', raw: '%c0%af' },
  { label: 'full-width dots', raw: encodeURIComponent('\uff0e\uff0e') },
  { label: '300 bytes', raw: 'a'.repeat(300) },
  { label: 'reserved CON', raw: 'CON' },
  { label: 'zero', raw: '0' },
  { label: 'negative', raw: '-1' },
  { label: 'huge number', raw: '99999999999999999999999' },
  { label: '1e400', raw: '1e400' },
  { label: 'NaN', raw: 'NaN' },
  { label: 'SQL', raw: encodeURIComponent("1' OR '1'='1") },
  { label: 'CRLF injection', raw: 'x%0d%0aX-Injected:%201' },
  { label: 'emoji', raw: encodeURIComponent('💥') },
  { label: 'spaces', raw: '%20%20' },
  { label: 'percent alone', raw: '%' },
  { label: 'broken escape', raw: '%zz' },
];

/** Query values; each is sent already encoded (or raw, where it says so). */
export const HOSTILE_QUERY_VALUES: { label: string; raw: string }[] = [
  { label: 'negative', raw: '-1' },
  { label: 'huge', raw: '999999999999999999999999' },
  { label: '1e400', raw: '1e400' },
  { label: 'NaN', raw: 'NaN' },
  { label: 'Infinity', raw: 'Infinity' },
  { label: 'fraction', raw: '1.5' },
  { label: 'empty', raw: '' },
  { label: 'invalid UTF-8 (encoded)', raw: '%ff%fe' },
  { label: 'NUL', raw: '%00' },
  { label: 'long', raw: 'q'.repeat(5000) },
  { label: 'SQL', raw: encodeURIComponent("' OR 1=1; DROP TABLE jobs; --") },
  { label: 'LIKE wildcards', raw: '%25_%25' },
  { label: 'JSON', raw: encodeURIComponent('{"$gt":""}') },
  { label: 'date nonsense', raw: '2024-13-45T99:99:99Z' },
  { label: 'broken escape', raw: '%zz' },
];

/** Ways to make one query parameter into more than one value. */
export const QUERY_SHAPES: { label: string; make: (name: string, value: string) => string[] }[] = [
  { label: 'repeated', make: (n, v) => [`${n}=${v}`, `${n}=${v}`] },
  { label: 'array brackets', make: (n, v) => [`${n}[]=${v}`] },
  { label: 'object brackets', make: (n, v) => [`${n}[a]=${v}`] },
  { label: 'no value', make: (n) => [n] },
  { label: 'prototype', make: () => ['__proto__[x]=1', 'constructor[prototype][x]=1'] },
];

/** Header values, as raw bytes (obs-text and invalid UTF-8 included). */
export const HOSTILE_HEADER_VALUES: { label: string; value: Buffer }[] = [
  { label: 'empty', value: Buffer.from('') },
  { label: 'negative', value: Buffer.from('-1') },
  { label: 'huge number', value: Buffer.from('99999999999999999999999') },
  { label: '1e400', value: Buffer.from('1e400') },
  { label: 'NaN', value: Buffer.from('NaN') },
  { label: 'fraction', value: Buffer.from('1.5') },
  { label: 'invalid UTF-8', value: Buffer.from([0xff, 0xfe, 0xc0, 0xaf]) },
  { label: 'traversal', value: Buffer.from('../../x') },
  { label: 'long', value: Buffer.from('h'.repeat(4000)) },
  { label: 'list', value: Buffer.from('1, 2') },
];

/** A JSON value of a type the field is not. */
export const WRONG_TYPES: Record<string, { label: string; json: string }[]> = {
  string: [
    { label: 'number', json: '12' },
    { label: 'object', json: '{"a":1}' },
    { label: 'array', json: '["x"]' },
    { label: 'boolean', json: 'true' },
  ],
  number: [
    { label: 'string', json: '"12"' },
    { label: 'object', json: '{}' },
    { label: 'array', json: '[1]' },
    { label: 'boolean', json: 'false' },
  ],
  integer: [
    { label: 'string', json: '"1"' },
    { label: 'fraction', json: '1.5' },
    { label: 'array', json: '[1]' },
    { label: 'boolean', json: 'true' },
  ],
  boolean: [
    { label: 'string', json: '"true"' },
    { label: 'number', json: '1' },
  ],
  object: [
    { label: 'string', json: '"x"' },
    { label: 'number', json: '1' },
    { label: 'array', json: '[]' },
  ],
  array: [
    { label: 'string', json: '"x"' },
    { label: 'object', json: '{}' },
    { label: 'number', json: '1' },
  ],
};

/** Numbers for numeric fields: `refuse` when no finite number schema can take them. */
export const HOSTILE_NUMBERS: { label: string; json: string; refuse: 'always' | 'integer' | 'never' }[] = [
  { label: '1e400 (parses to Infinity)', json: '1e400', refuse: 'always' },
  { label: '-1e400', json: '-1e400', refuse: 'always' },
  { label: 'NaN literal (not JSON)', json: 'NaN', refuse: 'always' },
  { label: 'Infinity literal (not JSON)', json: 'Infinity', refuse: 'always' },
  { label: 'hex literal (not JSON)', json: '0x10', refuse: 'always' },
  { label: '1e308', json: '1e308', refuse: 'integer' },
  { label: '2^53 + 2', json: '9007199254740994', refuse: 'integer' },
  { label: 'fraction', json: '0.5', refuse: 'integer' },
  { label: 'negative', json: '-1', refuse: 'never' },
  { label: 'negative huge', json: '-9007199254740991', refuse: 'never' },
  { label: 'negative zero', json: '-0', refuse: 'never' },
];

/** Content types that no JSON, multipart or raw route of qlab takes for its body. */
export const WRONG_CONTENT_TYPES: { label: string; value?: string }[] = [
  { label: 'missing' },
  { label: 'text/plain', value: 'text/plain' },
  { label: 'application/xml', value: 'application/xml' },
  { label: 'multipart without boundary', value: 'multipart/form-data' },
  { label: 'json with a foreign charset', value: 'application/json; charset=koi8-r' },
  { label: 'invalid media type', value: '/' },
];
