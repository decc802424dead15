import type BetterSqlite3 from 'better-sqlite3';

/** How many compiled statements a connection keeps (least recently used go first). */
export const STATEMENT_CACHE_SIZE = 128;

/**
 * Keeps a SQLite connection's compiled statements for the SQL it runs again. knex's
 * better-sqlite3 client calls `prepare` for every query it runs, and SQLite compiles the SQL
 * each time: on the tracker's first sync that was 12 % of the whole (a 100-row INSERT has 2,000
 * placeholders; quantum-tracker README, "Where the first full sync's time goes"). A statement
 * compiled once stays valid across schema changes (SQLite recompiles it itself when the schema
 * moved under it: sqlite3_prepare_v2's SQLITE_SCHEMA handling).
 *
 * What a cached statement could carry over from its last use is reset before it is handed out
 * again: the result modes a caller may have toggled (`raw`, `pluck`, `expand`, and
 * `safeIntegers`, which the kit's connections leave at better-sqlite3's default, off). One still
 * being iterated (`busy`) is not handed out: that caller gets a fresh compile.
 */
export function cacheStatements(conn: BetterSqlite3.Database, size = STATEMENT_CACHE_SIZE): void {
  const compile = conn.prepare.bind(conn);
  const cache = new Map<string, BetterSqlite3.Statement>();
  const cached = (sql: string): BetterSqlite3.Statement => {
    const hit = cache.get(sql);
    if (hit && !hit.busy) {
      // Map keeps insertion order: moving the hit to the end makes the first the least recent.
      cache.delete(sql);
      cache.set(sql, hit);
      if (hit.reader) hit.raw(false).pluck(false).expand(false);
      return hit.safeIntegers(false);
    }
    const statement = compile(sql);
    if (!hit) {
      cache.set(sql, statement);
      if (cache.size > size) cache.delete(cache.keys().next().value as string);
    }
    return statement;
  };
  conn.prepare = cached as BetterSqlite3.Database['prepare'];
}
