import path from 'node:path';
import { pgSchemaUrl, pgTestUrl, tempDir } from '@qlab/testkit';
import { type Knex, type Migration, openDatabase, parseDbUrl } from '../src';

const migrations: Record<string, Migration> = {
  '001_items': {
    up: (k) =>
      k.schema.createTable('items', (t) => {
        t.increments('id');
        t.string('name').notNullable();
      }),
  },
  '002_items_size': { up: (k) => k.schema.alterTable('items', (t) => t.integer('size')) },
};

describe('parseDbUrl', () => {
  it('understands SQLAlchemy-style SQLite and PostgreSQL URLs', () => {
    expect(parseDbUrl('sqlite:///qibo.db', '/base')).toEqual({ client: 'sqlite', filename: '/base/qibo.db' });
    expect(parseDbUrl('sqlite:////var/lib/qibo.db', '/base')).toEqual({
      client: 'sqlite',
      filename: '/var/lib/qibo.db',
    });
    expect(parseDbUrl('sqlite://')).toEqual({ client: 'sqlite', filename: ':memory:' });
    expect(parseDbUrl('data/x.db', '/base')).toEqual({ client: 'sqlite', filename: '/base/data/x.db' });
    expect(parseDbUrl('postgresql+psycopg2://u:p@h:5432/db')).toMatchObject({
      client: 'pg',
      connectionString: 'postgres://u:p@h:5432/db',
    });
    expect(parseDbUrl('postgres://h/db?schema=s1')).toEqual({
      client: 'pg',
      connectionString: 'postgres://h/db',
      searchPath: 's1',
    });
    expect(() => parseDbUrl('mysql://h/db')).toThrow(/unsupported/);
  });
});

async function roundTrip(knex: Knex) {
  await knex('items').insert({ name: 'a', size: 3 });
  const rows = await knex('items').select('name', 'size');
  expect(rows).toEqual([{ name: 'a', size: 3 }]);
}

describe('openDatabase on SQLite', () => {
  const tmp = tempDir();
  afterAll(() => tmp.cleanup());

  it('creates the file in WAL mode, migrates, and migrating again is a no-op', async () => {
    const filename = path.join(tmp.dir, 'nested', 'db.sqlite');
    let knex = await openDatabase({ target: { client: 'sqlite', filename }, migrations });
    const [mode] = await knex.raw('pragma journal_mode');
    expect(mode.journal_mode).toBe('wal');
    await roundTrip(knex);
    await knex.destroy();
    knex = await openDatabase({ target: { client: 'sqlite', filename }, migrations });
    expect(await knex('items').count({ n: '*' })).toEqual([{ n: 1 }]);
    await knex.destroy();
  });

  it('rolls back and closes when a migration fails', async () => {
    const filename = path.join(tmp.dir, 'bad.sqlite');
    const bad = { ...migrations, '003_bad': { up: (k: Knex) => k.raw('not sql') } };
    await expect(openDatabase({ target: { client: 'sqlite', filename }, migrations: bad })).rejects.toThrow(
      /migration failed.*not sql/,
    );
  });
});

const pgUrl = pgTestUrl('kit db');
(pgUrl ? describe : describe.skip)('openDatabase on PostgreSQL', () => {
  it('migrates into its own schema', async () => {
    const { url, schema } = pgSchemaUrl(pgUrl!);
    const knex = await openDatabase({ target: parseDbUrl(url), migrations });
    try {
      await roundTrip(knex);
      const r = await knex.raw('select current_schema() as s');
      expect(r.rows[0].s).toBe(schema);
    } finally {
      await knex.raw('drop schema ?? cascade', [schema]);
      await knex.destroy();
    }
  });
});
