import { LOG_LINE_MAX } from '../storage/job-logs';

/**
 * Most lines waiting to be sent; a handler that writes faster than they are sent loses the excess,
 * counted. One less than a request may carry, leaving room for the line that counts them.
 */
const PENDING_MAX = 999;
/** Characters of lines per request (see sendWaiting). */
const BATCH_CHARS = 128 * 1024;

/**
 * The lines a running handler wrote with `log(line)`, sent in batches: with every heartbeat and
 * once more before the job is reported. One send at a time; lines whose send failed wait for the
 * next one, so a brief outage loses nothing. When more than PENDING_MAX wait, the newest are
 * dropped and one line saying how many goes with the next send.
 */
export class LogBuffer {
  private pending: string[] = [];
  private dropped = 0;
  private sending: Promise<void> | undefined;

  constructor(private readonly send: (lines: string[]) => Promise<void>) {}

  /** What the handler calls. Never throws: a log line must not fail a job. */
  add(line: unknown): void {
    if (this.pending.length >= PENDING_MAX) {
      this.dropped++;
      return;
    }
    this.pending.push(String(line).slice(0, LOG_LINE_MAX));
  }

  /** Sends what waits (after any send in progress); rejects with the send's error, keeping the lines. */
  flush(): Promise<void> {
    const previous = this.sending ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(() => this.sendWaiting());
    this.sending = next;
    return next;
  }

  private async sendWaiting(): Promise<void> {
    if (this.dropped > 0) {
      this.pending.push(
        `[qlab] ${this.dropped} log lines dropped: the handler wrote faster than they could be sent`,
      );
      this.dropped = 0;
    }
    if (this.pending.length === 0) return;
    // One request stays well under the API's 1 MB JSON limit: a character is at most 3 bytes of
    // UTF-8 (6 as a JSON escape), so a batch holds at most ~128 K characters of lines.
    let chars = 0;
    let n = 0;
    while (n < this.pending.length && (n === 0 || chars + this.pending[n]!.length <= BATCH_CHARS)) {
      chars += this.pending[n]!.length;
      n++;
    }
    const batch = this.pending.slice(0, n);
    this.pending = this.pending.slice(n);
    try {
      await this.send(batch);
    } catch (err) {
      // Back in front of anything written meanwhile, within the cap.
      const back = [...batch, ...this.pending];
      this.dropped += Math.max(0, back.length - PENDING_MAX);
      this.pending = back.slice(0, PENDING_MAX);
      throw err;
    }
    // What did not fit goes in the next request, now.
    if (this.pending.length > 0) await this.sendWaiting();
  }
}
