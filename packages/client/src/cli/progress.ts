import { SingleBar } from 'cli-progress';

/** A progress bar on stderr (stdout stays clean for --json); silent when stderr is not a terminal. */
export function progressBar(label: string, enabled = process.stderr.isTTY === true) {
  if (!enabled) return { update: (_done: number, _total?: number) => undefined, stop: () => undefined };
  const bar = new SingleBar({
    format: `${label} [{bar}] {percentage}% | {doneMB}/{totalMB} MB | {speed} MB/s`,
    stream: process.stderr,
    hideCursor: true,
  });
  const started = Date.now();
  let running = false;
  const mb = (n: number) => (n / 1024 / 1024).toFixed(1);
  return {
    update(done: number, total?: number) {
      const t = total ?? done;
      const payload = {
        doneMB: mb(done),
        totalMB: total === undefined ? '?' : mb(t),
        speed: mb(done / Math.max((Date.now() - started) / 1000, 0.001)),
      };
      if (!running) {
        bar.start(Math.max(t, 1), done, payload);
        running = true;
      } else {
        bar.setTotal(Math.max(t, 1));
        bar.update(done, payload);
      }
    },
    stop() {
      if (running) bar.stop();
    },
  };
}
