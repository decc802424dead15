/** When to try a failed chunk again: initial × multiplier^(retries-1), capped (seed: 1 s, 2 s, 4 s … 60 s). */
export interface BackoffPolicy {
  /** Milliseconds before the first retry. Default 1000. */
  initialRetryDelay: number;
  /** Cap in milliseconds. Default 60000. */
  maxRetryDelay: number;
  /** Growth per retry. Default 2. */
  retryMultiplier: number;
  /** Attempts after the first before a chunk is given up. Default Infinity (the seed's). */
  maxRetries: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = {
  initialRetryDelay: 1000,
  maxRetryDelay: 60_000,
  retryMultiplier: 2,
  maxRetries: Number.POSITIVE_INFINITY,
};

/** Delay before retry number `retryCount` (1 = first retry). */
export function retryDelay(policy: BackoffPolicy, retryCount: number): number {
  const raw = policy.initialRetryDelay * policy.retryMultiplier ** Math.max(0, retryCount - 1);
  return Math.min(raw, policy.maxRetryDelay);
}

/** Time source and sleep, injectable so tests can check backoff without waiting. */
export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const realClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};
