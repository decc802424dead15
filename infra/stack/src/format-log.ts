const LEVELS: Record<number, string> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
};
const HIDDEN = new Set([
  'level',
  'time',
  'service',
  'name',
  'pid',
  'hostname',
  'msg',
  'req',
  'res',
  'responseTime',
]);

/**
 * Makes a service's JSON log line readable in the terminal `pnpm start` runs in:
 * `[service] 12:00:01 INFO message key=value`; request logs become `GET /path 200 3ms`.
 * Anything that is not a pino JSON line passes through unchanged.
 */
export function formatServiceLine(service: string, line: string): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return `[${service}] ${line}`;
  }
  if (typeof entry !== 'object' || entry === null || typeof entry.level !== 'number')
    return `[${service}] ${line}`;
  const time = typeof entry.time === 'string' ? entry.time.slice(11, 19) : '';
  const level = LEVELS[entry.level] ?? String(entry.level);
  const req = entry.req as { method?: string; url?: string } | undefined;
  const res = entry.res as { status?: number } | undefined;
  let text = String(entry.msg ?? '');
  if (req?.method && res?.status !== undefined)
    text = `${req.method} ${req.url} ${res.status} ${entry.responseTime ?? '?'}ms`;
  const extras = Object.entries(entry)
    .filter(([k]) => !HIDDEN.has(k))
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  const full = `[${service}] ${time} ${level.padEnd(5)} ${text}${extras ? ` ${extras}` : ''}`;
  return full.length > 400 ? `${full.slice(0, 399)}…` : full;
}
