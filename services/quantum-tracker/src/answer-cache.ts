/**
 * Everything here changes only when a sync records something, so a GET's answer is reused until
 * the next sync finishes (and for at most 10 s, as windows like "last 24 h" move on).
 */
export class AnswerCache {
  private readonly entries = new Map<string, { version: number; at: number; body: string }>();
  constructor(private readonly version: () => number) {}
  peek(key: string): string | undefined {
    const hit = this.entries.get(key);
    return hit && hit.version === this.version() && Date.now() - hit.at < 10_000 ? hit.body : undefined;
  }
  put(key: string, body: string, version: number): void {
    this.entries.set(key, { version, at: Date.now(), body });
    if (this.entries.size > 1000) this.entries.delete(this.entries.keys().next().value!);
  }
}
