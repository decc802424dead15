/** What loading a file of records answers, and how it can fail (the SQL is storage/loader.ts). */

export type FileFormat = 'ndjson' | 'csv';

export interface Rejected {
  /** 1-based line in the file (for CSV, the header is line 1). */
  line: number;
  /** The record's id, when it had one. */
  id: string | null;
  reason: string;
}

export interface LoadResult {
  accepted: number;
  rejected: number;
  /** The first `maxReported` rejected rows. */
  errors: Rejected[];
  /** Ids of the loaded records when there are at most 100 of them. */
  ids: string[];
  batch_ids: string[];
}

export const MAX_TEXT = 4096;
/** A CSV file DuckDB cannot read as given (a repeated column, a broken quote): the client's to fix. */
export class BadCsv extends Error {}

export class UnknownColumns extends Error {
  constructor(readonly columns: string[]) {
    super(`unknown columns: ${columns.join(', ')}`);
  }
}

/** Thrown in strict mode so the transaction rolls back; carries the report. */
export class LoadRejected extends Error {
  constructor(readonly result: LoadResult) {
    super(`${result.rejected} rows were rejected`);
  }
}

/** What a body's lines were like, for the loader. */
export interface ReceivedLines {
  /** Lines blanked (NDJSON), and why. */
  refused: Rejected[];
  /**
   * Every line started with `{` and none was blanked. Otherwise read_json, which skips blank
   * lines, would number the rows after one a line too low: the loader then numbers the lines
   * itself (loader.ts, stage).
   */
  plain: boolean;
}

/** The loader's limit on a line (read_json maximum_object_size, read_csv max_line_size). */
export const MAX_LINE_BYTES = 16 * 1024 * 1024;
