import { readFileSync } from 'node:fs';
import { z } from 'zod';

/** Thrown when the environment does not satisfy a service's schema; names every bad variable. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

/**
 * Reads `VAR_FILE` for any `VAR` the schema knows (Docker secrets), so secrets need not sit in env.
 * A `VAR` set directly wins over `VAR_FILE`.
 */
function withFileSecrets(keys: string[], env: NodeJS.ProcessEnv): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const key of keys) {
    const direct = env[key];
    const file = env[`${key}_FILE`];
    if (direct !== undefined && direct !== '') out[key] = direct;
    else if (file) out[key] = readFileSync(file, 'utf8').trim();
  }
  return out;
}

/**
 * Parses the environment once with a zod object schema. Fails fast with every problem listed,
 * never silently falling back to a default when a value is present but wrong.
 */
export function loadConfig<S extends z.ZodObject>(
  schema: S,
  env: NodeJS.ProcessEnv = process.env,
): z.infer<S> {
  const keys = Object.keys(schema.shape);
  let raw: Record<string, string | undefined>;
  try {
    raw = withFileSecrets(keys, env);
  } catch (err) {
    throw new ConfigError([`could not read a *_FILE secret: ${(err as Error).message}`]);
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => {
        const key = issue.path.join('.') || '(env)';
        const value = raw[key as string];
        const shown = value === undefined ? 'not set' : `got ${JSON.stringify(value)}`;
        return `${key}: ${issue.message} (${shown})`;
      }),
    );
  }
  return parsed.data;
}

/** Small helpers for env schemas: every variable arrives as a string or undefined. */
export const env = {
  port: (fallback: number) => z.coerce.number().int().min(0).max(65535).default(fallback),
  int: (fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER) =>
    z.coerce.number().int().min(min).max(max).default(fallback),
  bool: (fallback: boolean) =>
    z
      .enum(['1', '0', 'true', 'false', 'yes', 'no', 'on', 'off', ''])
      .default(fallback ? 'true' : 'false')
      .transform((v) => ['1', 'true', 'yes', 'on'].includes(v)),
  optionalString: () =>
    z
      .string()
      .optional()
      .transform((v) => (v === undefined || v === '' ? undefined : v)),
  url: () => z.url(),
  /**
   * The one duration convention of every variable: "250ms", "90s", "30m", "24h", "7d", or a plain
   * number of milliseconds; answered in milliseconds. "0" only with `allowZero`; `min`/`max` in ms.
   */
  duration: (fallback: string, bounds: { allowZero?: boolean; min?: number; max?: number } = {}) =>
    z
      .string()
      .default(fallback)
      .transform((value, ctx) => {
        const m = /^(\d+)(ms|s|m|h|d)?$/.exec(value.trim());
        const ms = m ? Number(m[1]) * DURATION_UNITS[m[2] ?? 'ms']! : Number.NaN;
        if (!m || (!bounds.allowZero && ms <= 0)) {
          ctx.addIssue({
            code: 'custom',
            message: 'must be a duration like 90s, 30m, 24h, 7d or milliseconds',
          });
          return z.NEVER;
        }
        const { min, max } = bounds;
        if ((min !== undefined && ms < min) || (max !== undefined && ms > max)) {
          const range = [
            min !== undefined ? `at least ${min} ms` : '',
            max !== undefined ? `at most ${max} ms` : '',
          ]
            .filter(Boolean)
            .join(' and ');
          ctx.addIssue({ code: 'custom', message: `must be ${range}` });
          return z.NEVER;
        }
        return ms;
      }),
};

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
/** Python's names, as the seeds' .env files spell them (LOG_LEVEL=INFO, WARNING, CRITICAL). */
const PYTHON_LEVELS: Record<string, (typeof LEVELS)[number]> = { warning: 'warn', critical: 'fatal' };

/** LOG_LEVEL in any case, pino's names or Python's. */
export function logLevel() {
  return z.preprocess(
    (v) => (typeof v === 'string' ? (PYTHON_LEVELS[v.toLowerCase()] ?? v.toLowerCase()) : v),
    z.enum(LEVELS).default('info'),
  );
}

/** HOST, PORT, DATA_DIR and LOG_LEVEL: read by every service. */
export function baseEnv(defaultPort: number) {
  return {
    HOST: z.string().min(1).default('127.0.0.1'),
    PORT: env.port(defaultPort),
    DATA_DIR: z.string().min(1).default('./data'),
    LOG_LEVEL: logLevel(),
  };
}

/** 127.0.0.0/8, ::1 and localhost: addresses no other machine can reach. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return (
    h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || /^::ffff:127\./.test(h)
  );
}

/**
 * Secure by default: a service that other machines can reach must require its token. Throws
 * one line naming the variable when HOST is not loopback and the token is missing.
 */
export function requireTokenOffLoopback(host: string, token: string | undefined, variable: string): void {
  if (token || isLoopback(host)) return;
  throw new ConfigError([
    `${variable}: required when HOST is not a loopback address (HOST=${host}); set it to a long random string and give the same to the gateway`,
  ]);
}
