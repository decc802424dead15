import pino from 'pino';

export type Logger = pino.Logger;

export interface LoggerOptions {
  service: string;
  /** pino level; 'silent' in tests. */
  level?: pino.LevelWithSilent;
}

/** JSON logs to stdout, one child per service; the kit's HTTP layer adds requestId per request. */
export function createLogger(options: LoggerOptions): Logger {
  return pino({
    name: options.service,
    level: options.level ?? 'info',
    base: { service: options.service },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: ['req.headers.authorization', 'req.headers["x-api-key"]'], censor: '[redacted]' },
  });
}

/** A logger that writes nothing: for tests and libraries used without one. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
