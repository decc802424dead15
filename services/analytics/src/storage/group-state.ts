import { P95 } from './summaries';

/**
 * What the fast write path (record-insert.ts) keeps in memory per summary group, so that adding
 * a record updates its groups without scanning the records: counts, sums, extremes, and the
 * group's largest primary-metric values, from which the exact p95 is read.
 *
 * The summary table stays the answer readers see; these states are a cache of how to update it.
 * Only a write holding the writer's lock changes them, in place; one that does not commit
 * forgets the groups it touched (WriteTx.afterRollback), and another kind of write that
 * recomputes a group forgets it, so a state never disagrees with the table for long enough
 * to be used.
 */

/**
 * The largest values of a multiset (ascending) and how many smaller ones there are. Enough to
 * give DuckDB's `quantile_cont(x, q)` exactly for high q, as long as the ranks it interpolates
 * between are in the window; when they fall below it, `quantile` says so and the caller reloads.
 */
export class TopValues {
  constructor(
    /** The largest values, ascending. */
    private readonly top: number[],
    /** How many values are smaller than (or equal to) top[0] and not held. */
    private below: number,
  ) {}

  get count(): number {
    return this.below + this.top.length;
  }

  /** How many values are held (the rest are only counted). */
  get held(): number {
    return this.top.length;
  }

  add(value: number): void {
    const top = this.top;
    // Below the window: only its rank matters, and only while the window is not everything.
    if (this.below > 0 && top.length > 0 && value < top[0]!) {
      this.below++;
      return;
    }
    let lo = 0;
    let hi = top.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (top[mid]! <= value) lo = mid + 1;
      else hi = mid;
    }
    top.splice(lo, 0, value);
    // Held values beyond twice what the window needs only cost memory and copies: the smallest
    // of them join the count below (a group that started empty would otherwise keep them all).
    const keep = windowSize(this.count, P95);
    if (top.length > 2 * keep) {
      const drop = top.length - keep;
      top.splice(0, drop);
      this.below += drop;
    }
  }

  /**
   * DuckDB's quantile_cont: RN = (n - 1)·q, FRN = ⌊RN⌋, CRN = ⌈RN⌉, d = RN - FRN, and
   * v[FRN]·(1 - d) + v[CRN]·d over the sorted values: the same doubles in the same order of
   * operations as DuckDB 1.x (checked bit for bit in test/fast-insert.slow.test.ts). null for
   * no values; undefined when FRN is below the window.
   */
  quantile(q: number): number | null | undefined {
    const n = this.count;
    if (n === 0) return null;
    const rn = (n - 1) * q;
    const frn = Math.floor(rn);
    const crn = Math.ceil(rn);
    if (frn < this.below) return undefined;
    const lo = this.top[frn - this.below]!;
    if (frn === crn) return lo;
    const hi = this.top[crn - this.below]!;
    const d = rn - frn;
    return lo * (1 - d) + hi * d;
  }
}

/** How many of a group's largest values to load: twice what the p95 needs, and some slack. */
export function windowSize(count: number, q: number): number {
  const needed = count - Math.floor((count - 1) * q);
  return Math.min(count, 2 * needed + 64);
}

/** A summary group as numbers: what its row in the summary table is computed from. */
export interface GroupState {
  total: number;
  succeeded: number;
  failed: number;
  /**
   * Sum and count of non-null values of each averaged metric (primary first); the sum of a
   * whole-number metric is a bigint, exact as DuckDB's (summaries.ts wholeMetric).
   */
  sums: (number | bigint)[];
  counts: number[];
  /** Smallest and largest primary metric; null while the group has none. */
  min: number | null;
  max: number | null;
  /** When its records started (or were recorded), in epoch microseconds. */
  firstUs: bigint | null;
  lastUs: bigint | null;
  /** Distinct hardware of a model group, or distinct models of a hardware group; else null. */
  distinct: number | null;
  top: TopValues;
}

/** One record's contribution to a group. */
export interface Contribution {
  succeeded: boolean;
  failed: boolean;
  /** Averaged metrics, primary first, as stored (null when the record has none); bigint for whole-number ones. */
  metrics: (number | bigint | null)[];
  atUs: bigint;
  /** Its keys, for the distinct counts. */
  model: string;
  hardware: string | null;
}

/**
 * sum / count rounded once to the nearest double, as DuckDB divides its exact sum of whole
 * numbers (Number(sum) / count rounds twice, off by one unit in the last place past 2^53).
 */
export function exactQuotient(sum: bigint, count: number): number {
  const negative = sum < 0n;
  const a = negative ? -sum : sum;
  const d = BigInt(count);
  // 2^128·a/d keeps more than 64 significant bits for any a ≥ 1, d < 2^64; a nonzero remainder
  // becomes a sticky last bit, so the one rounding in Number() sees ties only where they are.
  const q = (a << 128n) / d;
  const sticky = (a << 128n) % d === 0n ? 0n : 1n;
  const value = Number((q << 1n) | sticky) / 2 ** 129;
  return negative ? -value : value;
}

export function addTo(s: GroupState, c: Contribution): void {
  s.total++;
  if (c.succeeded) s.succeeded++;
  if (c.failed) s.failed++;
  c.metrics.forEach((v, i) => {
    if (v === null) return;
    const sum = s.sums[i]!;
    s.sums[i] = typeof sum === 'bigint' ? sum + BigInt(v) : sum + Number(v);
    s.counts[i]!++;
  });
  // The primary metric is a DOUBLE column in every domain (a test checks).
  const m = c.metrics[0] === null || c.metrics[0] === undefined ? null : Number(c.metrics[0]);
  if (m !== null) {
    s.min = s.min === null ? m : Math.min(s.min, m);
    s.max = s.max === null ? m : Math.max(s.max, m);
    s.top.add(m);
  }
  if (s.firstUs === null || c.atUs < s.firstUs) s.firstUs = c.atUs;
  if (s.lastUs === null || c.atUs > s.lastUs) s.lastUs = c.atUs;
}

/**
 * The states of one domain's groups by groupKey. Filled by the fast path as it goes and by a
 * warm-up read on a snapshot, which may be older than writes that committed while it ran: a
 * warm-up installs only the groups no write has touched since it began (`beginWarm`).
 */
export class GroupStates {
  private readonly states = new Map<string, GroupState>();
  /** Groups touched (or 'all') since each running warm-up began. */
  private readonly warming = new Set<{ touched: Set<string>; all: boolean }>();

  get(key: string): GroupState | undefined {
    return this.states.get(key);
  }

  /** The group's state now (under the writer's lock; a write that rolls back forgets it). */
  set(key: string, state: GroupState): void {
    this.states.set(key, state);
    for (const w of this.warming) w.touched.add(key);
  }

  /** After a write that recomputed groups in SQL: those (or, for many, all) are read again. */
  forget(keys: string[] | 'all'): void {
    if (keys === 'all') this.states.clear();
    else for (const k of keys) this.states.delete(k);
    for (const w of this.warming) {
      if (keys === 'all') w.all = true;
      else for (const k of keys) w.touched.add(k);
    }
  }

  /** Call before the warm-up's snapshot begins; hand the token to finishWarm. */
  beginWarm(): { touched: Set<string>; all: boolean } {
    const token = { touched: new Set<string>(), all: false };
    this.warming.add(token);
    return token;
  }

  /** Installs what the snapshot saw of groups nobody touched since; known states are newer. */
  finishWarm(
    token: { touched: Set<string>; all: boolean },
    seen: Map<string, GroupState> | undefined,
  ): number {
    this.warming.delete(token);
    if (!seen || token.all) return 0;
    let installed = 0;
    for (const [key, state] of seen) {
      if (token.touched.has(key) || this.states.has(key)) continue;
      this.states.set(key, state);
      installed++;
    }
    return installed;
  }

  get size(): number {
    return this.states.size;
  }
}
