import path from 'node:path';
import {
  decodeHeaderName,
  PATH_MODES,
  PathRefused,
  resolveInside,
  targetPathFor,
  withClashSuffix,
} from '../src/domain/path-modes';
import { HOSTILE_NAMES } from './fixtures';

describe('path modes', () => {
  it('follows the seed examples', () => {
    const now = 1730728950123;
    expect(targetPathFor('ignore', 'reports/2024/data.csv', now)).toMatch(
      /^1730728950123_[0-9a-f]{8}_reports_2024_data\.csv$/,
    );
    // PATH-MODES.md: "Client sends: reports/2024/data.csv  Server saves: ./uploads/data.csv".
    expect(targetPathFor('sanitize', 'reports/2024/data.csv')).toBe('data.csv');
    expect(targetPathFor('sanitize', './myfile.txt')).toBe('myfile.txt');
    expect(targetPathFor('sanitize', 'dir\\file.txt')).toBe('file.txt');
    expect(targetPathFor('sanitize', 'data.csv')).toBe('data.csv');
    expect(targetPathFor('sanitize', 'my file.txt')).toBe('my file.txt');
    expect(targetPathFor('allow-paths', 'reports/2024/data.csv')).toBe('reports/2024/data.csv');
    expect(targetPathFor('allow-paths', './x.csv')).toBe('x.csv');
    expect(targetPathFor('allow-paths', 'reports//./2024/data.csv')).toBe('reports/2024/data.csv');
    expect(targetPathFor('allow-paths', 'docs\\2024\\a.csv')).toBe('docs/2024/a.csv');
  });

  // The upstream server's own expectations (tests/test-path-preservation.js), in ignore mode.
  it.each([
    ['file.txt', /^\d{13}_[a-f0-9]{8}_file\.txt$/],
    ['reports/data.csv', /^\d{13}_[a-f0-9]{8}_reports_data\.csv$/],
    ['reports/2024/Q1/sales.pdf', /^\d{13}_[a-f0-9]{8}_reports_2024_Q1_sales\.pdf$/],
    ['docs\\windows\\path.docx', /^\d{13}_[a-f0-9]{8}_docs_windows_path\.docx$/],
    ['my document.txt', /^\d{13}_[a-f0-9]{8}_my-document\.txt$/],
    ['folder/file (copy) [2].txt', /^\d{13}_[a-f0-9]{8}_folder_file--copy---2-\.txt$/],
    ['./myfile.txt', /^\d{13}_[a-f0-9]{8}_myfile\.txt$/],
    ['café/α.csv', /^\d{13}_[a-f0-9]{8}_caf-_-\.csv$/],
  ])('names %s in ignore mode as the original', (name, pattern) => {
    expect(targetPathFor('ignore', name)).toMatch(pattern);
  });

  it('refuses percent-encoded dots and separators instead of storing them literally', () => {
    for (const mode of PATH_MODES) {
      for (const name of ['..%2F..%2Fetc%2Fpasswd', '%2e%2e/x', 'a%5Cb', 'x%00y', 'a%0Ab']) {
        expect(() => targetPathFor(mode, name)).toThrow(PathRefused);
      }
      // Other percent signs are just characters.
      expect(() => targetPathFor(mode, '100%25 done.txt')).not.toThrow();
    }
  });

  it('takes names POSIX takes, and refuses Windows-only ones only when asked', () => {
    for (const name of ['CON', 'nul.txt', 'ratio 1:2.txt', 'what?.txt', 'trailing.', 'space ']) {
      expect(targetPathFor('sanitize', name)).toBe(name);
      expect(targetPathFor('allow-paths', `dir/${name}`)).toBe(`dir/${name}`);
      expect(() => targetPathFor({ mode: 'sanitize', windowsSafe: true }, name)).toThrow(PathRefused);
      expect(() => targetPathFor({ mode: 'allow-paths', windowsSafe: true }, `dir/${name}`)).toThrow(
        PathRefused,
      );
    }
    expect(targetPathFor({ mode: 'ignore', windowsSafe: true }, 'x.')).toMatch(/_x-$/);
  });

  it.each(HOSTILE_NAMES.map((n) => [JSON.stringify(n).slice(0, 60), n]))(
    'never leaves the upload directory for %s',
    (_label, name) => {
      const root = '/srv/uploads';
      for (const mode of PATH_MODES) {
        let rel: string;
        try {
          rel = targetPathFor(mode, name as string);
        } catch (err) {
          expect(err).toBeInstanceOf(PathRefused);
          continue;
        }
        const abs = resolveInside(root, rel);
        expect(abs.startsWith(`${root}/`)).toBe(true);
        expect(rel).not.toMatch(/(^|\/)\.\.(\/|$)/);
        expect(rel).not.toMatch(/[\u0000-\u001f\\]/);
        const longest = mode === 'ignore' ? 255 : 200;
        for (const segment of rel.split('/')) expect(Buffer.byteLength(segment)).toBeLessThanOrEqual(longest);
        if (mode === 'ignore') expect(rel).toMatch(/^\d{13}_[0-9a-f]{8}_[A-Za-z0-9._-]*$/);
        if (mode !== 'allow-paths') expect(rel).not.toContain('/');
      }
    },
  );

  it('flattens into one unique name in ignore mode', () => {
    const a = targetPathFor('ignore', '../../etc/passwd');
    const b = targetPathFor('ignore', '../../etc/passwd');
    // As the original: the dots stay, harmless in one flat name, and show what was sent.
    expect(a).toMatch(/^\d{13}_[0-9a-f]{8}_\.\._\.\._etc_passwd$/);
    expect(a).not.toBe(b);
    expect(targetPathFor('ignore', 'CON')).toMatch(/_CON$/);
    const long = targetPathFor('ignore', `${'a'.repeat(400)}.tar.gz`);
    expect(long.length).toBe(255);
    expect(long.endsWith('a.gz')).toBe(true);
  });

  it('refuses traversal and absolute paths where names are kept', () => {
    // tests/security-test.js upstream: these are blocked in sanitize mode.
    for (const name of [
      '../x',
      '../../etc/passwd',
      'foo/../../../etc/passwd',
      '/abs',
      '/',
      '.',
      '..',
      'C:\\Windows\\System32\\config\\sam',
      '\\\\server\\share\\file.txt',
      'x\u0000y',
      'bell\u0007.txt',
    ]) {
      expect(() => targetPathFor('sanitize', name)).toThrow(PathRefused);
    }
    for (const name of ['../x', 'a/../../x', '/abs', 'c:/x', '\\\\srv\\x', 'dir/x\u0001']) {
      expect(() => targetPathFor('allow-paths', name)).toThrow(PathRefused);
    }
  });

  it('decodes header names as strict UTF-8', () => {
    expect(decodeHeaderName(Buffer.from('café.csv', 'utf8').toString('latin1'))).toBe('café.csv');
    // Overlong encoding of "." (C0 AE) twice, then "/": must be refused, not read as "../".
    expect(() => decodeHeaderName(Buffer.from([0xc0, 0xae, 0xc0, 0xae, 0x2f]).toString('latin1'))).toThrow(
      PathRefused,
    );
    expect(() => decodeHeaderName(Buffer.from([0xe0, 0x80, 0xae]).toString('latin1'))).toThrow(PathRefused);
  });

  it('adds a timestamp before the extension on a clash', () => {
    expect(withClashSuffix('reports/data.csv', 42)).toBe('reports/data_42.csv');
    expect(withClashSuffix('noext', 42, 2)).toBe('noext_42_2');
  });

  it('keeps resolveInside honest', () => {
    expect(() => resolveInside('/srv/up', '../x')).toThrow(PathRefused);
    expect(resolveInside('/srv/up', 'a/b')).toBe(path.join('/srv/up', 'a/b'));
  });
});
