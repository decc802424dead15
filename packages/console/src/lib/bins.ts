import { epochMs } from './format';

/**
 * Counts (or sums) per time bin, for the charts: `size` ms bins from `from` to `to`, every bin
 * present (zero when empty), as [epoch seconds, value] pairs.
 */
export function binned<T>(
  items: T[],
  at: (item: T) => number | string | null | undefined,
  options: { from: number; to: number; size: number; value?: (item: T) => number },
): [number, number][] {
  const { from, to, size } = options;
  const start = Math.floor(from / size) * size;
  const bins = new Map<number, number>();
  for (let t = start; t <= to; t += size) bins.set(t, 0);
  for (const item of items) {
    const ms = epochMs(at(item));
    if (ms === undefined || ms < start || ms > to) continue;
    const b = Math.floor(ms / size) * size;
    bins.set(b, (bins.get(b) ?? 0) + (options.value ? options.value(item) : 1));
  }
  return [...bins].map(([t, v]) => [t / 1000, v]);
}
