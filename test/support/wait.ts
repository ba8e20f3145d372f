/** Small waiting helpers for tests that watch real servers and processes. */
import { sleep } from "../../src/util/sleep.js";


/** The promise's value, or undefined if it takes longer than `ms` (the timer does not outlive the race). */
export async function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Polls `cond` (sync or async) every `everyMs` until it returns a truthy value, and returns that value;
 * rejects after `timeoutMs`, naming `what` when given.
 */
export async function waitFor<T>(
  cond: () => T | Promise<T>, timeoutMs = 5000, { what, everyMs = 10 }: { what?: string; everyMs?: number } = {},
): Promise<NonNullable<T>> {
  const t0 = Date.now();
  for (;;) {
    const v = await cond();
    if (v) return v as NonNullable<T>;
    if (Date.now() - t0 > timeoutMs) throw new Error(what ? `timed out after ${timeoutMs} ms waiting for ${what}` : "condition not met in time");
    await sleep(everyMs);
  }
}
