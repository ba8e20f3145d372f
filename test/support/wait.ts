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

/** Polls `cond` every 10 ms; rejects if it is still false after timeoutMs. */
export async function waitFor(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error("condition not met in time");
    await sleep(10);
  }
}
