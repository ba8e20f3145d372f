import { sleep } from "./sleep.js";

/** What to do after a failed attempt. */
export type RetryDecision =
  /** Give up: the error is final. */
  | false
  /** Retry after the exponential backoff. */
  | true
  /** Retry after this many milliseconds (a server's Retry-After), still capped by maxDelayMs. */
  | { delayMs: number };

export interface RetryOptions {
  /** Retries after the first attempt (0 = one attempt only). */
  retries: number;
  /** The first backoff; it doubles on each retry. */
  baseDelayMs: number;
  /** Upper bound of one wait, a Retry-After included. Default: no bound. */
  maxDelayMs?: number;
  /**
   * Multiplies each backoff by a uniform factor in [0.5, 1) so that many clients failing together do not
   * retry together. Default true.
   */
  jitter?: boolean;
  /** Source of the jitter, for reproducible tests. Default Math.random. */
  random?: () => number;
  /** Aborts the wait between attempts (the attempt itself gets the signal through its own closure). */
  signal?: AbortSignal;
  /** Called with each failure and the 0-based attempt that made it. Default: always retry. */
  shouldRetry?: (error: unknown, attempt: number) => RetryDecision;
  /** Called before each wait, e.g. to log "retrying in 2 s". */
  onRetry?: (error: unknown, attempt: number, delayMs: number) => void;
}

/** The wait before retry number `attempt + 1`: baseDelayMs * 2^attempt, jittered, capped. */
export function backoffDelay(attempt: number, o: Pick<RetryOptions, "baseDelayMs" | "maxDelayMs" | "jitter" | "random">): number {
  const factor = o.jitter === false ? 1 : 0.5 + (o.random ?? Math.random)() / 2;
  const delay = o.baseDelayMs * 2 ** attempt * factor;
  return o.maxDelayMs === undefined ? delay : Math.min(o.maxDelayMs, delay);
}

/** An attempt failed for good; `attempts` says how many were made. The last error is `cause`. */
export class RetriesExhausted extends Error {
  readonly attempts: number;
  constructor(attempts: number, cause: unknown) {
    super(`gave up after ${attempts} attempt${attempts === 1 ? "" : "s"}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = "RetriesExhausted";
    this.attempts = attempts;
  }
}

/**
 * Runs `attempt(i)` until it resolves, the error is final (shouldRetry says false) or the retries are
 * spent; then rejects with RetriesExhausted carrying the attempt count and the last error as its cause.
 * An abort of `signal` during a wait rejects with the abort error itself.
 */
export async function retryWithBackoff<T>(attempt: (attemptIndex: number) => Promise<T>, o: RetryOptions): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await attempt(i);
    } catch (e) {
      const decision = i >= o.retries ? false : (o.shouldRetry?.(e, i) ?? true);
      if (decision === false) throw new RetriesExhausted(i + 1, e);
      const delayMs =
        decision === true
          ? backoffDelay(i, o)
          : o.maxDelayMs === undefined
            ? decision.delayMs
            : Math.min(o.maxDelayMs, decision.delayMs);
      o.onRetry?.(e, i, delayMs);
      await sleep(delayMs, o.signal);
    }
  }
}
