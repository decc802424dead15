import path from 'node:path';
import { tempDir } from '@qlab/testkit';
import BetterSqlite3 from 'better-sqlite3';
import { type Knex, openDatabase } from '../src/db';
import { cacheStatements } from '../src/sqlite-statements';

describe('cacheStatements', () => {
  let tmp: ReturnType<typeof tempDir>;
  let db: BetterSqlite3.Database;
  beforeEach(() => {
    tmp = tempDir('qlab-kit-statements-');
    db = new BetterSqlite3(path.join(tmp.dir, 'a.db'));
    cacheStatements(db, { limits: { statements: 3, sqlChars: 500, longestSql: 300 } });
    db.exec('create table t (a integer, b text)');
    db.prepare('insert into t values (?, ?)').run(1, 'one');
    db.prepare('insert into t values (?, ?)').run(2, 'two');
  });
  afterEach(() => {
    db.close();
    tmp.cleanup();
  });

  it('hands out the same compiled statement for the same SQL', () => {
    const sql = 'select a from t where a = ?';
    expect(db.prepare(sql)).toBe(db.prepare(sql));
    expect(db.prepare(sql).get(2)).toEqual({ a: 2 });
  });

  it('keeps only the most recently used statements', () => {
    const first = db.prepare('select 1');
    db.prepare('select 2');
    db.prepare('select 3');
    expect(db.prepare('select 1')).toBe(first); // used again: now the most recent
    db.prepare('select 4'); // pushes out `select 2`, the least recent
    expect(db.prepare('select 1')).toBe(first);
    const second = db.prepare('select 2');
    expect(db.prepare('select 2')).toBe(second);
    db.prepare('select 5');
    db.prepare('select 6');
    db.prepare('select 7');
    expect(db.prepare('select 1')).not.toBe(first);
  });

  it('keeps SQL text within bounds: long SQL is compiled each time, the total is capped', () => {
    const long = `select 1 where 1 in (${Array(100).fill('?').join(', ')})`; // 320 characters
    expect(db.prepare(long)).not.toBe(db.prepare(long));
    const pad = (n: number, chars: number) => `select ${n} /* ${'x'.repeat(chars)} */`;
    const first = db.prepare(pad(1, 180)); // 195 characters
    const second = db.prepare(pad(2, 280)); // 490 in all
    expect(db.prepare(pad(1, 180))).toBe(first);
    db.prepare(pad(3, 180)); // 685: the least recent goes, though three statements are allowed
    expect(db.prepare(pad(1, 180))).toBe(first);
    expect(db.prepare(pad(2, 280))).not.toBe(second);
  });

  it("resets safeIntegers to the connection's default, also one set later", () => {
    db.exec('create table big (n integer)');
    db.prepare('insert into big values (?)').run(9007199254740993n);
    const sql = 'select n from big';
    db.prepare(sql).safeIntegers(true);
    expect(db.prepare(sql).get()).toEqual({ n: 9007199254740992 });
    db.defaultSafeIntegers(true);
    expect(db.prepare(sql).get()).toEqual({ n: 9007199254740993n });
    db.prepare(sql).safeIntegers(false);
    expect(db.prepare(sql).get()).toEqual({ n: 9007199254740993n });
    const other = new BetterSqlite3(':memory:');
    other.defaultSafeIntegers(true);
    cacheStatements(other, { safeIntegers: true });
    other.prepare('select 9007199254740993 as n').safeIntegers(false);
    expect(other.prepare('select 9007199254740993 as n').get()).toEqual({ n: 9007199254740993n });
    other.close();
  });

  it('resets the result modes a previous caller toggled', () => {
    const sql = 'select a, b from t order by a';
    db.prepare(sql).pluck(true);
    expect(db.prepare(sql).all()).toEqual([
      { a: 1, b: 'one' },
      { a: 2, b: 'two' },
    ]);
    db.prepare(sql).raw(true);
    expect(db.prepare(sql).get()).toEqual({ a: 1, b: 'one' });
    db.prepare(sql).expand(true);
    expect(db.prepare(sql).get()).toEqual({ a: 1, b: 'one' });
    db.prepare(sql).safeIntegers(true);
    expect(db.prepare(sql).get()).toEqual({ a: 1, b: 'one' });
  });

  it('compiles afresh for a statement still being iterated', () => {
    const sql = 'select a from t order by a';
    const iterating = db.prepare(sql);
    const rows = iterating.iterate();
    expect(rows.next().value).toEqual({ a: 1 });
    const other = db.prepare(sql);
    expect(other).not.toBe(iterating);
    expect(other.all()).toEqual([{ a: 1 }, { a: 2 }]);
    expect(rows.next().value).toEqual({ a: 2 });
    expect(rows.next().done).toBe(true);
    expect(db.prepare(sql)).toBe(iterating); // done iterating: the cached one again
  });

  it('follows schema changes under a cached statement', () => {
    const sql = 'select * from t order by a';
    expect(db.prepare(sql).get()).toEqual({ a: 1, b: 'one' });
    db.exec('alter table t add column c text');
    expect(db.prepare(sql).get()).toEqual({ a: 1, b: 'one', c: null });
    db.exec("drop table t; create table t (a integer, z text); insert into t values (7, 'seven')");
    expect(db.prepare(sql).all()).toEqual([{ a: 7, z: 'seven' }]);
    db.exec('drop table t');
    expect(() => db.prepare(sql).all()).toThrow(/no such table/);
  });

  it('does not cache SQL that does not compile', () => {
    expect(() => db.prepare('select from nowhere')).toThrow();
    expect(() => db.prepare('select from nowhere')).toThrow();
  });
});

describe('openDatabase on SQLite', () => {
  let tmp: ReturnType<typeof tempDir>;
  let knex: Knex;
  beforeAll(async () => {
    tmp = tempDir('qlab-kit-statements-');
    knex = await openDatabase({
      target: { client: 'sqlite', filename: path.join(tmp.dir, 'k.db') },
      migrations: {
        '001': {
          up: (k) => k.schema.createTable('items', (t) => t.string('id').primary()),
        },
      },
    });
  });
  afterAll(async () => {
    await knex.destroy();
    tmp.cleanup();
  });

  it('runs knex queries on cached statements, inside transactions and out', async () => {
    const conn = (await knex.client.acquireConnection()) as BetterSqlite3.Database;
    try {
      const sql = 'select 42 as answer';
      expect(conn.prepare(sql)).toBe(conn.prepare(sql));
    } finally {
      await knex.client.releaseConnection(conn);
    }
    for (let i = 0; i < 3; i++) {
      await knex.transaction(async (trx) => {
        await trx('items').insert({ id: `x${i}` });
        expect(await trx('items').count({ n: '*' })).toEqual([{ n: i + 1 }]);
      });
    }
    await expect(
      knex.transaction(async (trx) => {
        await trx('items').insert({ id: 'rolled-back' });
        await trx('items').insert({ id: 'x0' });
      }),
      // Not toThrow: better-sqlite3's native part keeps the error class of the first test file
      // that loaded it, so after another file in this worker it is not this file's Error.
    ).rejects.toMatchObject({ message: expect.stringMatching(/UNIQUE/) });
    expect((await knex('items').select('id').orderBy('id')).map((r) => r.id)).toEqual(['x0', 'x1', 'x2']);
  });
});
