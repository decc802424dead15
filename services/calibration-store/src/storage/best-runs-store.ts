import type { Knex } from '@qlab/kit';

/** QIBO DB's best runs: which run of a calibration is the one to use, newest first. */
export interface BestRun {
  id: number;
  calibrationHashID: string;
  runId: string;
  /** Epoch milliseconds. */
  createdAt: number;
}

interface Row {
  id: number | string;
  calibration_hash_id: string;
  run_id: string;
  created_at: number | string;
}

const fromRow = (r: Row): BestRun => ({
  id: Number(r.id),
  calibrationHashID: r.calibration_hash_id,
  runId: r.run_id,
  createdAt: Number(r.created_at),
});

export class BestRunsStore {
  constructor(private readonly knex: Knex) {}

  /** Records a best run and runs `alsoInTransaction` (its event) in the same transaction. */
  async set(
    calibrationHashID: string,
    runId: string,
    alsoInTransaction: (trx: Knex.Transaction, saved: BestRun) => Promise<unknown>,
  ): Promise<BestRun> {
    const row = { calibration_hash_id: calibrationHashID, run_id: runId, created_at: Date.now() };
    return this.knex.transaction(async (trx) => {
      const [inserted] = await trx('best_runs').insert(row).returning('id');
      const id = typeof inserted === 'object' ? Number((inserted as { id: number }).id) : Number(inserted);
      const saved = fromRow({ ...row, id });
      await alsoInTransaction(trx, saved);
      return saved;
    });
  }

  /** The newest `limit`, newest first (by id, as upstream orders them). */
  async newest(limit: number): Promise<BestRun[]> {
    return ((await this.knex('best_runs').orderBy('id', 'desc').limit(limit)) as Row[]).map(fromRow);
  }
}
