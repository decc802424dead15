import { decodeKeyPath, encodeKeyPath } from '../src';

describe('paths as blob keys', () => {
  it('keep plain names, escape the rest, give every path back, and never give two one key', () => {
    expect(encodeKeyPath('files', 'reports/2024/data.csv')).toBe('files/reports/2024/data.csv');
    expect(encodeKeyPath('files', 'my file.csv')).toBe('files/my_20file.csv');
    expect(encodeKeyPath('jobs/j1', '.env')).toBe('jobs/j1/_2Eenv');
    const paths = [
      'a b',
      'a_20b',
      'a_2',
      'a_',
      '_20',
      '_5F20',
      'a=b',
      'a_3Db',
      'x.y',
      'x_2Ey',
      '-rf',
      'données/報告.pdf',
      'ok_ab',
    ];
    const keys = paths.map((p) => encodeKeyPath('p', p));
    expect(new Set(keys).size).toBe(paths.length);
    expect(keys.map((k) => decodeKeyPath('p', k))).toEqual(paths);
    expect(() => encodeKeyPath('p', 'é'.repeat(200))).toThrow(RangeError);
    expect(() => encodeKeyPath('p', `${'é'.repeat(90)}.pdf`)).toThrow(/over 255/);
    expect(() => decodeKeyPath('p', 'q/x')).toThrow(RangeError);
  });
});
