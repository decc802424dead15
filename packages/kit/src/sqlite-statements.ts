import type BetterSqlite3 from 'better-sqlite3';

/** What a connection's cache may hold: statements, and their SQL text in all. */
export interface StatementCacheLimits {
  /** Statements kept (least recently used go first). */
  statements: number;
  /**
   * Characters of SQL kept in all. A compiled statement's native memory grows with its SQL, up
   * to about 55 bytes per character for a list of placeholders (a 32,000-id IN list: 96 KB of
   * SQL, 5 MB compiled), so the cache is bounded by text as well as by count: at most about
   * 30 MB. SQL longer than `longestSql` is compiled each time, as before. (The tracker's 100-job
   * INSERT is 38 KB of SQL, its history rows' 19 KB.)
   */
  sqlChars: number;
  longestSql: number;
}

export const STATEMENT_CACHE_LIMITS: StatementCacheLimits = {
  statements: 128,
  sqlChars: 512 * 1024,
  longestSql: 64 * 1024,
};

/**
 * Keeps a SQLite connection's compiled statements for the SQL it runs again. knex's
 * better-sqlite3 client calls `prepare` for every query it runs, and SQLite compiles the SQL
 * each time: on the tracker's first sync that was 12 % of the whole (a 100-row INSERT has 2,000
 * placeholders; quantum-tracker README, "Where the first full sync's time goes"). A statement
 * compiled once stays valid across schema changes (SQLite recompiles it itself when the schema
 * moved under it: sqlite3_prepare_v2's SQLITE_SCHEMA handling).
 *
 * What a cached statement could carry over from its last use is reset before it is handed out
 * again: the result modes a caller may have toggled (`raw`, `pluck`, `expand`) and
 * `safeIntegers`, back to the connection's default (`safeIntegers` here, and whatever
 * `defaultSafeIntegers` sets later). One still being iterated (`busy`) is not handed out: that
 * caller gets a fresh compile.
 */
export function cacheStatements(
  conn: BetterSqlite3.Database,
  options: { safeIntegers?: boolean; limits?: StatementCacheLimits } = {},
): void {
  const limits = options.limits ?? STATEMENT_CACHE_LIMITS;
  let safeIntegers = options.safeIntegers ?? false;
  const setDefault = conn.defaultSafeIntegers.bind(conn);
  conn.defaultSafeIntegers = (toggle = true) => {
    safeIntegers = toggle;
    return setDefault(toggle);
  };
  const compile = conn.prepare.bind(conn);
  const cache = new Map<string, BetterSqlite3.Statement>();
  let chars = 0;
  const cached = (sql: string): BetterSqlite3.Statement => {
    const hit = cache.get(sql);
    if (hit && !hit.busy) {
      // Map keeps insertion order: moving the hit to the end makes the first the least recent.
      cache.delete(sql);
      cache.set(sql, hit);
      if (hit.reader) hit.raw(false).pluck(false).expand(false);
      return hit.safeIntegers(safeIntegers);
    }
    const statement = compile(sql);
    if (!hit && sql.length <= limits.longestSql) {
      cache.set(sql, statement);
      chars += sql.length;
      while (cache.size > limits.statements || chars > limits.sqlChars) {
        const oldest = cache.keys().next().value as string;
        cache.delete(oldest);
        chars -= oldest.length;
      }
    }
    return statement;
  };
  conn.prepare = cached as BetterSqlite3.Database['prepare'];
}
