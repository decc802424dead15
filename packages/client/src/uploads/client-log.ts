/**
 * The IndexedCP client's log: the original's levels (trace … fatal, plus silent), chosen by the
 * `logLevel` option, else INDEXEDCP_LOG_LEVEL, else info. Lines go to stderr with a prefix, so a
 * program's stdout stays its own.
 */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface ClientLog {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export function parseLogLevel(value: string | undefined, fallback: LogLevel = 'info'): LogLevel {
  if (value === undefined || value === '') return fallback;
  const level = value.toLowerCase() as LogLevel;
  // Python's names, as the seed's port uses them.
  if ((value.toLowerCase() as string) === 'warning') return 'warn';
  if ((value.toLowerCase() as string) === 'critical') return 'fatal';
  if (!LOG_LEVELS.includes(level))
    throw new Error(`log level "${value}" is not one of ${LOG_LEVELS.join(', ')}`);
  return level;
}

export function createClientLog(
  prefix: string,
  level: string | undefined,
  write: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
): ClientLog {
  const threshold = LOG_LEVELS.indexOf(parseLogLevel(level ?? process.env.INDEXEDCP_LOG_LEVEL));
  const at = (name: LogLevel) => (message: string) => {
    if (LOG_LEVELS.indexOf(name) >= threshold) write(`${prefix} ${message}`);
  };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}
