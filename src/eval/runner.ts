/**
 * The resumable runner: runs each pending item once, with bounded concurrency, a per-item timeout and
 * item-level retries with backoff, and stores each outcome the moment it is known.
 *
 * Resume rules (a run is identified by its run key, a hash of its config):
 * - an item with a `done` row is never run again;
 * - an item with an `error` row is run again only with `retryErrors`;
 * - an item that was in flight when the process died has no row and simply runs again;
 * - items are taken in the given (deterministic) order; within one process each is scheduled once.
 */
import { RetriesExhausted, retryWithBackoff } from "../util/retry.js";
import type { ItemRecord, StoredResult } from "./types.js";
import type { ResultStore } from "./store.js";

export interface RunnerOptions<I> {
  store: ResultStore;
  runKey: string;
  items: I[];
  idOf: (item: I) => string;
  process: (item: I, signal: AbortSignal) => Promise<ItemRecord>;
  concurrency: number;
  /** Whole-item deadline (all calls and retries). */
  itemTimeoutMs: number;
  /** Tries per item (1 = no item-level retry). */
  attempts: number;
  /** First item-level backoff; doubles, with jitter. */
  backoffMs?: number;
  retryErrors: boolean;
  /** Stops taking items and aborts the ones in flight (they stay pending). */
  signal?: AbortSignal;
  /** Called after each stored outcome with the totals so far. */
  onProgress?: (p: { finished: number; errors: number; pending: number }) => void;
  /** Whether an error may succeed on another try. Default: everything but aborts. */
  retryable?: (e: unknown) => boolean;
}

export interface RunnerOutcome {
  /** Items in the selection with a row before this run (skipped). */
  skipped: number;
  /** Items run now. */
  ran: number;
  interrupted: boolean;
}

export function describeError(e: unknown): string {
  if (e instanceof Error) {
    const name = e.name && e.name !== "Error" ? `${e.name}: ` : "";
    return `${name}${e.message}`;
  }
  return String(e);
}

class ItemTimeout extends Error {
  constructor(ms: number) {
    super(`item timed out after ${ms} ms`);
    this.name = "ItemTimeout";
  }
}

export async function runItems<I>(o: RunnerOptions<I>): Promise<RunnerOutcome> {
  const existing: Map<string, StoredResult> = o.store.results(o.runKey);
  const pending: I[] = [];
  const seen = new Set<string>();
  for (const item of o.items) {
    const id = o.idOf(item);
    if (seen.has(id)) throw new Error(`duplicate item id '${id}' in the selection`);
    seen.add(id);
    const row = existing.get(id);
    if (!row || (row.status === "error" && o.retryErrors)) pending.push(item);
  }
  let finished = 0;
  let errors = 0;
  for (const item of o.items) {
    const row = existing.get(o.idOf(item));
    if (row?.status === "done") finished++;
    else if (row?.status === "error" && !o.retryErrors) errors++;
  }
  const skipped = o.items.length - pending.length;
  const stop = o.signal ?? new AbortController().signal;
  const backoff = o.backoffMs ?? 250;
  const retryable = o.retryable ?? (() => true);
  let next = 0;
  let ran = 0;
  o.onProgress?.({ finished, errors, pending: pending.length });

  async function runOne(item: I): Promise<void> {
    const id = o.idOf(item);
    // A ref'd timer (AbortSignal.timeout's is unref'd): a hung item must keep the process alive until its deadline.
    const deadlineCtl = new AbortController();
    const timer = setTimeout(() => deadlineCtl.abort(new ItemTimeout(o.itemTimeoutMs)), o.itemTimeoutMs);
    try {
      await attemptItem(item, id, AbortSignal.any([stop, deadlineCtl.signal]), deadlineCtl.signal);
    } finally {
      clearTimeout(timer);
    }
  }

  async function attemptItem(item: I, id: string, signal: AbortSignal, deadline: AbortSignal): Promise<void> {
    let attempts = 0;
    try {
      const record = await retryWithBackoff(
        () => {
          attempts++;
          return o.process(item, signal);
        },
        { retries: o.attempts - 1, baseDelayMs: backoff, signal, shouldRetry: (e) => !stop.aborted && !deadline.aborted && retryable(e) },
      );
      if (stop.aborted) return;
      o.store.putDone(o.runKey, id, attempts, record);
      finished++;
    } catch (e) {
      if (stop.aborted) return; // interrupted: no row, the item stays pending
      // A deadline that passes mid-call or mid-backoff is the reason, whatever the call threw.
      const cause = e instanceof RetriesExhausted ? e.cause : e;
      o.store.putError(o.runKey, id, attempts, describeError(deadline.aborted ? new ItemTimeout(o.itemTimeoutMs) : cause));
      errors++;
    }
  }

  async function worker(): Promise<void> {
    while (!stop.aborted) {
      const i = next++;
      if (i >= pending.length) return;
      ran++;
      await runOne(pending[i]!);
      o.onProgress?.({ finished, errors, pending: pending.length - next });
    }
  }

  const workers = Array.from({ length: Math.max(1, Math.min(o.concurrency, pending.length)) }, () => worker());
  await Promise.all(workers);
  return { skipped, ran, interrupted: stop.aborted };
}
