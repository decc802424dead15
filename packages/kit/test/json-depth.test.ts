import { jsonNestsDeeperThan, ndjsonNestsDeeperThan } from '../src/json-body';

const deep = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`;

describe('ndjsonNestsDeeperThan', () => {
  it('finds a line nested too deep wherever it is', () => {
    const fine = '{"a":[1,{"b":2}]}';
    for (const lines of [
      [deep(65)],
      [fine, deep(65)],
      [fine, fine, `{"x":${deep(64)}}`, fine],
      [`{"s":"${'['.repeat(100)}"}`, deep(65)],
    ])
      expect(ndjsonNestsDeeperThan(Buffer.from(lines.join('\n')), 64)).toBe(true);
  });

  it('passes lines as deep as allowed, and brackets inside strings', () => {
    for (const text of [
      '',
      '\n\n',
      deep(64),
      `${deep(64)}\n${deep(64)}\n`,
      `{"s":"${'['.repeat(100)}"}`,
      `{"s":"\\"${'{'.repeat(100)}"}\n${deep(10)}`,
      // 70 brackets on one line, never more than 2 open at once
      `[${'[],'.repeat(69)}[]]`,
    ])
      expect(ndjsonNestsDeeperThan(Buffer.from(text), 64)).toBe(false);
  });

  it('counts each line on its own, as jsonNestsDeeperThan does per line', () => {
    // 40 open at the end of one line and 40 more on the next: neither line is 65 deep.
    const text = `${'['.repeat(40)}\n${'['.repeat(40)}`;
    expect(ndjsonNestsDeeperThan(Buffer.from(text), 64)).toBe(false);
    expect(jsonNestsDeeperThan(text.replace('\n', ''), 64)).toBe(true);
    // An escape at the very end of a line does not carry into the next.
    const escaped = `{"s":"a\\\n${deep(65)}`;
    expect(ndjsonNestsDeeperThan(Buffer.from(escaped), 64)).toBe(true);
  });
});
