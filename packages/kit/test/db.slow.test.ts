import { spawn } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fromSource, pgSchemaUrl, pgTestUrl, tempDir } from '@qlab/testkit';
import BetterSqlite3 from 'better-sqlite3';
import { type Knex, type Migration, openDatabase, parseDbUrl, silentLogger } from '../src';
import { sharedMigrations } from './fixtures/shared-migrations';

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

  it('fails a query that takes longer than pgTimeoutMs, and goes on working', async () => {
    const { url, schema } = pgSchemaUrl(pgUrl!);
    const knex = await openDatabase({ target: parseDbUrl(url), migrations, pgTimeoutMs: 300 });
    try {
      const t0 = Date.now();
      await expect(knex.raw('select pg_sleep(3)')).rejects.toThrow(/timeout/i);
      // Not a connection still busy with it: the next queries run at once.
      expect(Date.now() - t0).toBeLessThan(2000);
      await roundTrip(knex);
    } finally {
      await knex.raw('drop schema ?? cascade', [schema]);
      await knex.destroy();
    }
  });
});

/** Starts `n` processes that open `url` with the fixture's migrations at once; their outputs. */
async function openTogether(url: string, n: number, busyMs: number): Promise<string[]> {
  const run = fromSource(path.resolve(__dirname, '..'), 'test/fixtures/open-db.ts');
  return Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<string>((resolve) => {
          const child = spawn(run.cmd, [...run.args, url, String(busyMs)], {
            cwd: path.resolve(__dirname, '..'),
            stdio: ['ignore', 'pipe', 'inherit'],
          });
          let out = '';
          child.stdout!.on('data', (d: Buffer) => {
            out += d.toString();
          });
          child.on('exit', (code) => resolve(`${code} ${out.trim()}`));
        }),
    ),
  );
}

describe('processes migrating one database at once', () => {
  // The job benchmark saw "database is locked" on knex_migrations_lock when two workers started.
  it.each([5000, 0])(
    'all start on one SQLite file (busy timeout %i ms)',
    async (busyMs) => {
      const tmp = tempDir();
      try {
        const file = path.join(tmp.dir, 'shared.db');
        const outs = await openTogether(file, 8, busyMs);
        expect(outs).toEqual(Array(8).fill('0 ok'));
        const knex = await openDatabase({
          target: { client: 'sqlite', filename: file },
          migrations: sharedMigrations,
        });
        try {
          expect(await knex('knex_migrations').pluck('name')).toEqual(['001_a', '002_b', '003_rows']);
          expect(await knex('b').count({ n: '*' })).toEqual([{ n: 2 }]);
        } finally {
          await knex.destroy();
        }
      } finally {
        tmp.cleanup();
      }
    },
    60_000,
  );

  const pg = pgTestUrl('processes migrating one PostgreSQL schema');
  (pg ? it : it.skip)(
    'all start on one PostgreSQL schema',
    async () => {
      const { url, schema } = pgSchemaUrl(pg!);
      const outs = await openTogether(url, 8, 5000);
      const knex = await openDatabase({ target: parseDbUrl(url), migrations: sharedMigrations });
      try {
        expect(outs).toEqual(Array(8).fill('0 ok'));
        expect(await knex('knex_migrations').orderBy('id').pluck('name')).toEqual([
          '001_a',
          '002_b',
          '003_rows',
        ]);
        expect(await knex('b').count({ n: '*' })).toEqual([{ n: '2' }]);
      } finally {
        await knex.raw('drop schema if exists ?? cascade', [schema]);
        await knex.destroy();
      }
    },
    60_000,
  );
});

describe('a lock table left with two rows by an earlier race', () => {
  // knex inserts its lock row without a lock; two racing starts each inserted one, and knex's
  // "update … where is_locked = 0" then never touches exactly one row: every later start failed.
  async function breakLockTable(knex: Knex) {
    await knex('knex_migrations_lock').insert({ is_locked: 0 });
  }

  it('is mended on SQLite and the start goes on', async () => {
    const tmp = tempDir();
    try {
      const target = { client: 'sqlite' as const, filename: path.join(tmp.dir, 'raced.db') };
      const first = await openDatabase({ target, migrations: { '001_items': migrations['001_items']! } });
      await breakLockTable(first);
      expect(await first('knex_migrations_lock').count({ n: '*' })).toEqual([{ n: 2 }]);
      await first.destroy();
      const again = await openDatabase({ target, migrations });
      try {
        expect(await again('knex_migrations_lock').select('is_locked')).toEqual([{ is_locked: 0 }]);
        expect(await again('knex_migrations').orderBy('id').pluck('name')).toEqual([
          '001_items',
          '002_items_size',
        ]);
      } finally {
        await again.destroy();
      }
    } finally {
      tmp.cleanup();
    }
  });

  (pgUrl ? it : it.skip)('is mended on PostgreSQL and the start goes on', async () => {
    const { url, schema } = pgSchemaUrl(pgUrl!);
    const first = await openDatabase({
      target: parseDbUrl(url),
      migrations: { '001_items': migrations['001_items']! },
    });
    await breakLockTable(first);
    expect(await first('knex_migrations_lock').count({ n: '*' })).toEqual([{ n: '2' }]);
    await first.destroy();
    const again = await openDatabase({ target: parseDbUrl(url), migrations });
    try {
      expect(await again('knex_migrations_lock').select('is_locked')).toEqual([{ is_locked: 0 }]);
      expect(await again('knex_migrations').orderBy('id').pluck('name')).toEqual([
        '001_items',
        '002_items_size',
      ]);
    } finally {
      await again.raw('drop schema ?? cascade', [schema]);
      await again.destroy();
    }
  });
});

describe("another system's database", () => {
  const foreignTables = { names: ['jobs'], hint: 'point it at a new database' };

  it('is refused before its file is changed in any way', async () => {
    const tmp = tempDir();
    try {
      const file = path.join(tmp.dir, 'media_store.db');
      const seed = new BetterSqlite3(file);
      seed.exec('create table jobs (id text primary key, status text)');
      seed.close();
      chmodSync(file, 0o644);
      const before = readFileSync(file);
      await expect(
        openDatabase({
          target: { client: 'sqlite', filename: file },
          migrations: sharedMigrations,
          foreignTables,
        }),
      ).rejects.toThrow(/another system's "jobs" table .* point it at a new database/);
      expect(statSync(file).mode & 0o777).toBe(0o644);
      expect(readFileSync(file).equals(before)).toBe(true);
      expect(existsSync(`${file}-wal`)).toBe(false);
    } finally {
      tmp.cleanup();
    }
  });

  it('is told apart from our own, which has the same table and our migrations', async () => {
    const tmp = tempDir();
    try {
      const file = path.join(tmp.dir, 'ours.db');
      const own = { '001_jobs': { up: (k: Knex) => k.schema.createTable('jobs', (t) => t.string('id')) } };
      await (await openDatabase({ target: { client: 'sqlite', filename: file }, migrations: own })).destroy();
      const again = await openDatabase({
        target: { client: 'sqlite', filename: file },
        migrations: own,
        foreignTables,
      });
      await again.destroy();
    } finally {
      tmp.cleanup();
    }
  });

  const pg = pgTestUrl("another system's PostgreSQL schema");
  (pg ? it : it.skip)('is refused on PostgreSQL too, with nothing written', async () => {
    const { url, schema } = pgSchemaUrl(pg!);
    const admin = await openDatabase({ target: parseDbUrl(pg!), migrations: {} });
    try {
      await admin.raw('create schema ??', [schema]);
      await admin.raw('create table ??.jobs (id text)', [schema]);
      await expect(
        openDatabase({ target: parseDbUrl(url), migrations: sharedMigrations, foreignTables }),
      ).rejects.toThrow(/another system's "jobs" table/);
      const tables = await admin('information_schema.tables')
        .where({ table_schema: schema })
        .pluck('table_name');
      expect(tables).toEqual(['jobs']);
    } finally {
      await admin.raw('drop schema if exists ?? cascade', [schema]);
      await admin.destroy();
    }
  });
});

describe('a migration that fails on its own', () => {
  const pg = pgTestUrl('a failing migration on PostgreSQL');
  (pg ? it : it.skip)(
    'fails the start at once, even when its error looks like a race',
    async () => {
      const { url, schema } = pgSchemaUrl(pg!);
      // A migration bug: a unique index over rows that repeat (23505, as two sessions creating
      // knex's own tables at once would also say).
      const bad: Record<string, Migration> = {
        '001_t': {
          up: async (k) => {
            await k.schema.createTable('t', (t) => t.string('a'));
            await k('t').insert([{ a: 'x' }, { a: 'x' }]);
            await k.schema.alterTable('t', (t) => t.unique(['a']));
          },
        },
      };
      const waits: string[] = [];
      const note = (_o: unknown, msg?: string) => {
        if (String(msg).includes('another process is migrating')) waits.push(String(msg));
      };
      const logger = { ...silentLogger(), warn: note, info: note } as unknown as ReturnType<
        typeof silentLogger
      >;
      const admin = await openDatabase({ target: parseDbUrl(pg!), migrations: {} });
      try {
        await expect(openDatabase({ target: parseDbUrl(url), migrations: bad, logger })).rejects.toThrow(
          /unique/i,
        );
        // Not taken for a race: never waited on, so the real error shows at once.
        expect(waits).toEqual([]);
      } finally {
        await admin.raw('drop schema if exists ?? cascade', [schema]);
        await admin.destroy();
      }
    },
    90_000,
  );
});
