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
      /^1730728950_[0-9a-f]{8}_reports_2024_data\.csv$/,
    );
    expect(() => targetPathFor('sanitize', 'reports/2024/data.csv')).toThrow(PathRefused);
    expect(targetPathFor('sanitize', 'data.csv')).toBe('data.csv');
    expect(targetPathFor('allow-paths', 'reports/2024/data.csv')).toBe('reports/2024/data.csv');
    expect(targetPathFor('allow-paths', 'reports//./2024/data.csv')).toBe('reports/2024/data.csv');
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
        for (const segment of rel.split('/')) expect(Buffer.byteLength(segment)).toBeLessThanOrEqual(200);
        if (mode !== 'allow-paths') expect(rel).not.toContain('/');
      }
    },
  );

  it('flattens into one unique name in ignore mode', () => {
    const a = targetPathFor('ignore', '../../etc/passwd');
    const b = targetPathFor('ignore', '../../etc/passwd');
    expect(a).toMatch(/^\d+_[0-9a-f]{8}_etc_passwd$/);
    expect(a).not.toBe(b);
    expect(targetPathFor('ignore', 'CON')).toMatch(/_CON$/);
  });

  it('refuses traversal, absolute paths and reserved names where names are kept', () => {
    for (const name of ['../x', '/abs', 'C:\\x', 'CON', 'a\\b', 'x\u0000y']) {
      expect(() => targetPathFor('sanitize', name)).toThrow(PathRefused);
    }
    for (const name of [
      '../x',
      'a/../../x',
      '/abs',
      'c:/x',
      '\\\\srv\\x',
      'a\\b',
      'dir/NUL',
      'dir/x\u0001',
    ]) {
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
