// The runner, the store and the adaptive limiter in-process: item timeouts and retries, stored
// reasons, no double counting in the store, interruption leaves items pending, and the limiter's
// window arithmetic and Retry-After pause.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ResultStore } from "../src/eval/store.js";
import { runItems } from "../src/eval/runner.js";
import { AdaptiveLimiter } from "../src/eval/limiter.js";
import type { ItemRecord } from "../src/eval/types.js";
import { sleep } from "../src/util/sleep.js";

const record = (id: string): ItemRecord => ({ kind: "benign", id, prompt: id, label: "safe", answers: [`answer ${id}`], checks: [], checkVerdicts: [], calls: [], wallMs: 1, verdicts: {} });

test("store: a finished row is final, an error row is replaced, attempts add up", () => {
  const dir = mkdtempSync(join(tmpdir(), "eval-store-"));
  const store = new ResultStore(join(dir, "eval.sqlite"));
  try {
    store.putError("k", "a", 2, "first failure");
    store.putError("k", "a", 1, "second failure");
    let a = store.results("k").get("a")!;
    assert.equal(a.status, "error");
    assert.equal(a.attempts, 3);
    assert.equal(a.status === "error" && a.error, "second failure");
    store.putDone("k", "a", 1, record("a"));
    store.putDone("k", "a", 1, { ...record("a"), answers: ["a different answer"] });
    store.putError("k", "a", 1, "late failure");
    a = store.results("k").get("a")!;
    assert.equal(a.status, "done");
    assert.equal(a.attempts, 4);
    assert.deepEqual(a.status === "done" && a.record.answers, ["answer a"], "the first finished record stays");
    assert.equal(store.results("other").size, 0, "runs are separated by key");
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("runner: per-item timeout, retries with backoff, reasons, resume and interruption", async () => {
  const dir = mkdtempSync(join(tmpdir(), "eval-runner-"));
  const store = new ResultStore(join(dir, "eval.sqlite"));
  try {
    const tries = new Map<string, number>();
    const items = Array.from({ length: 20 }, (_, i) => `item-${i}`);
    let inFlight = 0;
    let maxInFlight = 0;
    const outcome = await runItems({
      store,
      runKey: "k",
      items,
      idOf: (id) => id,
      concurrency: 3,
      itemTimeoutMs: 150,
      attempts: 2,
      backoffMs: 5,
      retryErrors: false,
      process: async (id, signal) => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        tries.set(id, (tries.get(id) ?? 0) + 1);
        try {
          if (id === "item-3") throw new Error("always broken");
          if (id === "item-5" && tries.get(id) === 1) throw new Error("flaky once");
          if (id === "item-7") await new Promise((_, reject) => signal.addEventListener("abort", () => reject(signal.reason), { once: true }));
          await sleep(2);
          return record(id);
        } finally {
          inFlight--;
        }
      },
    });
    assert.equal(outcome.ran, 20);
    assert.ok(maxInFlight <= 3, `concurrency bound (${maxInFlight})`);
    const rows = store.results("k");
    assert.equal(rows.size, 20);
    const e3 = rows.get("item-3")!;
    assert.equal(e3.status, "error");
    assert.equal(e3.attempts, 2);
    assert.match(e3.status === "error" ? e3.error : "", /always broken/);
    assert.equal(rows.get("item-5")!.status, "done", "a flaky item succeeds on its second try");
    const e7 = rows.get("item-7")!;
    assert.match(e7.status === "error" ? e7.error : "", /ItemTimeout: item timed out after 150 ms/);
    assert.equal(tries.get("item-7"), 1, "no retry after the item deadline");

    // Resume: nothing finished runs again; errors only with retryErrors.
    tries.clear();
    const again = await runItems({ store, runKey: "k", items, idOf: (id) => id, concurrency: 3, itemTimeoutMs: 150, attempts: 1, retryErrors: false, process: async (id) => (tries.set(id, 1), record(id)) });
    assert.equal(again.ran, 0);
    assert.equal(tries.size, 0);
    const retry = await runItems({ store, runKey: "k", items, idOf: (id) => id, concurrency: 3, itemTimeoutMs: 150, attempts: 1, retryErrors: true, process: async (id) => (tries.set(id, 1), record(id)) });
    assert.equal(retry.ran, 2);
    assert.deepEqual([...tries.keys()].sort(), ["item-3", "item-7"]);
    assert.ok([...store.results("k").values()].every((r) => r.status === "done"));

    // Interruption: the items in flight get no row and stay pending.
    const stop = new AbortController();
    const more = Array.from({ length: 10 }, (_, i) => `more-${i}`);
    let started = 0;
    const cut = await runItems({
      store,
      runKey: "k2",
      items: more,
      idOf: (id) => id,
      concurrency: 2,
      itemTimeoutMs: 5000,
      attempts: 3,
      retryErrors: false,
      signal: stop.signal,
      process: async (id, signal) => {
        if (++started === 3) stop.abort();
        await new Promise((r, reject) => {
          const t = setTimeout(r, 20);
          signal.addEventListener("abort", () => (clearTimeout(t), reject(new Error("aborted"))), { once: true });
        });
        return record(id);
      },
    });
    assert.equal(cut.interrupted, true);
    const k2 = store.results("k2");
    assert.ok(k2.size < more.length);
    assert.ok([...k2.values()].every((r) => r.status === "done"), "an interrupted item is not recorded as an error");
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("limiter: halves on 429 once per cohort, grows on success, honours Retry-After", async () => {
  const lim = new AdaptiveLimiter(8);
  const c1 = await lim.acquire();
  const c2 = await lim.acquire();
  lim.onRateLimited(c1, undefined);
  lim.onRateLimited(c2, undefined); // same cohort: no second decrease
  assert.equal(lim.stats.window, 4);
  lim.release();
  lim.release();
  for (let i = 0; i < 4; i++) lim.onSuccess();
  assert.ok(lim.stats.window > 4.9 && lim.stats.window < 5, `additive increase (${lim.stats.window})`);
  const c3 = await lim.acquire();
  lim.onRateLimited(c3, 120);
  lim.release();
  const t0 = Date.now();
  await lim.acquire();
  assert.ok(Date.now() - t0 >= 100, "new calls wait for Retry-After");
  lim.release();
  // The window bounds calls in flight.
  const small = new AdaptiveLimiter(2);
  await small.acquire();
  await small.acquire();
  let third = false;
  const p = small.acquire().then(() => (third = true));
  await sleep(20);
  assert.equal(third, false);
  small.release();
  await p;
  assert.equal(third, true);
  assert.equal(lim.stats.rateLimited, 3);
});
