import type { OutboxRow, OutboxSource } from '@qlab/events';
import type { DuckDb } from './duck';
import { OUTBOX } from './schema';

/** The publisher's view of the DuckDB outbox: oldest first, deleted only after the broker acked. */
export function duckOutboxSource(db: DuckDb): OutboxSource {
  return {
    async drain(limit, send) {
      const rows = await db.query<OutboxRow & { seq: number }>(
        `SELECT seq, topic, payload FROM ${OUTBOX} ORDER BY seq LIMIT ${Math.trunc(limit)}`,
      );
      if (rows.length === 0) return 0;
      await send(rows);
      const last = rows[rows.length - 1]!.seq;
      await db.write((tx) => tx.run(`DELETE FROM ${OUTBOX} WHERE seq <= $1`, [last]));
      return rows.length;
    },
  };
}
