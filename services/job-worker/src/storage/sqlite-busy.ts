/** SQLite's answer when another connection holds the write lock. */
export const isBusy = (err: unknown) => {
  const e = err as { code?: string; message?: string };
  return (
    e.code === 'SQLITE_BUSY' ||
    e.code === 'SQLITE_BUSY_SNAPSHOT' ||
    /database is locked/.test(e.message ?? '')
  );
};

/**
 * SQLite has one writer: a transaction can find the database busy (another process holds the
 * write lock). Such a transaction changed nothing, so it is retried with jittered backoff.
 */
export async function retryBusy<T>(work: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (err) {
      if (!isBusy(err) || attempt >= 2000) throw err;
      // Write locks are held for well under a millisecond: retry at once a few times, then back
      // off with jitter (up to 20 ms) so waiting processes do not take turns in lockstep.
      if (attempt <= 50) await new Promise((r) => setImmediate(r));
      else await new Promise((r) => setTimeout(r, Math.random() * Math.min(20, attempt / 10)));
    }
  }
}
