// Kill -9 the real eval CLI process at random points, five times in a row,
// then re-run: the results equal those of an uninterrupted run (no lost item, no duplicate, same
// numbers), finished items are never sent to the model again, and no results.json exists while a run
// is unfinished. Also --retry-errors and the one-writer lock. The model is the SCRIPTED STAND-IN of
// test/support/eval-fixtures.ts with a small delay per call.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { startScriptedServer } from "./support/scripted-openai-server.js";
import { runCliChild, startCli } from "./support/eval-cli.js";
import * as fx from "./support/eval-fixtures.js";
import { Rng } from "../src/util/rng.js";
import { sleep } from "../src/util/sleep.js";


function doneIds(dbFile: string): Set<string> {
  if (!existsSync(dbFile)) return new Set();
  const db = new Database(dbFile, { readonly: true, fileMustExist: true });
  try {
    db.pragma("busy_timeout = 2000");
    const rows = db.prepare("SELECT item_id FROM results WHERE status = 'done'").all() as { item_id: string }[];
    return new Set(rows.map((r) => r.item_id));
  } catch {
    return new Set(); // the tables may not exist yet
  } finally {
    db.close();
  }
}

/** What must be identical between two runs (timings and dates aside). */
function comparable(results: any) {
  return {
    status: results.status,
    runKey: results.runKey,
    counts: results.counts,
    asr: results.jailbreak.asr,
    selfCheck: results.jailbreak.selfCheck,
    calls: results.cost.calls,
    tokens: results.cost.tokens,
    records: results.records.map((r: any) => ({ id: r.id, prompt: r.prompt, answers: r.answers, checks: r.checks, calls: r.calls.length })),
  };
}

function initialCallItem(messages: { role: string; content: string }[]): string | null {
  if (messages.some((m) => m.role === "assistant")) return null;
  const m = /Behavior (\d+)/.exec(messages.find((x) => x.role === "user")?.content ?? "");
  return m ? `advbench-${Number(m[1])}` : null;
}

test("kill -9 five times at random points, then resume: identical to an uninterrupted run", async () => {
  const dir = mkdtempSync(join(tmpdir(), "eval-resume-"));
  const N = 80;
  fx.writeAdvBench(dir, N);
  const srv = await startScriptedServer(async (messages) => {
    await sleep(8);
    return fx.harmfulAndBenignReply(messages);
  });
  const args = (out: string) => [
    "eval", "jailbreak", "--base-url", srv.url, "--model", "standin", "--defense", "cac", "--rounds", "1",
    "--data-dir", dir, "--output", out, "--json", "--no-progress", "--concurrency", "4",
  ];
  try {
    const reference = await runCliChild(args(join(dir, "uninterrupted")));
    assert.equal(reference.code, 0, reference.stderr);
    const ref = JSON.parse(readFileSync(join(dir, "uninterrupted", "results.json"), "utf8"));
    assert.equal(ref.records.length, N);

    const out = join(dir, "killed");
    const db = join(out, "eval.sqlite");
    const rng = new Rng(20241125);
    let kills = 0;
    for (let k = 0; k < 5; k++) {
      const before = doneIds(db);
      const callsBefore = srv.calls.length;
      const { child, done } = startCli(args(out));
      // Kill once a random number (1..12) of further items has finished, plus a random 0..40 ms.
      const target = before.size + 1 + rng.int(12);
      const t0 = Date.now();
      while (doneIds(db).size < target && Date.now() - t0 < 20_000 && child.exitCode === null) await sleep(10);
      await sleep(rng.int(40));
      child.kill("SIGKILL");
      const res = await done;
      if (res.signal === "SIGKILL") kills++;
      assert.ok(!existsSync(join(out, "results.json")), "no results.json after a killed run");
      // Finished items were never sent to the model again.
      const resent = srv.calls.slice(callsBefore).map((c) => initialCallItem(c.messages)).filter((id): id is string => id !== null && before.has(id));
      assert.deepEqual(resent, [], `run ${k + 1} re-ran finished items`);
    }
    assert.equal(kills, 5, "all five runs were killed mid-run");
    const partial = doneIds(db).size;
    assert.ok(partial > 0 && partial < N, `killed runs left a partial store (${partial} of ${N})`);

    const before = doneIds(db);
    const callsBefore = srv.calls.length;
    const final = await runCliChild(args(out));
    assert.equal(final.code, 0, final.stderr);
    const resent = srv.calls.slice(callsBefore).map((c) => initialCallItem(c.messages)).filter((id): id is string => id !== null && before.has(id));
    assert.deepEqual(resent, []);
    // Every item not finished before was run exactly once by the final run.
    const ranNow = srv.calls.slice(callsBefore).map((c) => initialCallItem(c.messages)).filter((id): id is string => id !== null);
    assert.equal(ranNow.length, N - before.size);
    assert.equal(new Set(ranNow).size, ranNow.length);

    const got = JSON.parse(readFileSync(join(out, "results.json"), "utf8"));
    assert.deepEqual(comparable(got), comparable(ref));
    assert.deepEqual(final.json.asr, reference.json.asr);
    assert.equal(final.json.items, N);
    // One row per item in the store, no duplicates.
    const d = new Database(db, { readonly: true });
    const rows = d.prepare("SELECT item_id, count(*) AS n FROM results GROUP BY item_id").all() as { n: number }[];
    d.close();
    assert.equal(rows.length, N);
    assert.ok(rows.every((r) => r.n === 1));

    // A re-run of a finished run sends nothing to the model and reports the same numbers.
    const callsAtEnd = srv.calls.length;
    const again = await runCliChild(args(out));
    assert.equal(again.code, 0);
    assert.equal(srv.calls.length, callsAtEnd);
    assert.deepEqual(again.json.asr, reference.json.asr);
  } finally {
    await srv.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("errors are stored with their reason and retried only with --retry-errors; a second writer is refused", async () => {
  const dir = mkdtempSync(join(tmpdir(), "eval-resume-"));
  const N = 12;
  fx.writeAdvBench(dir, N);
  let broken = true;
  let slow = false;
  const srv = await startScriptedServer(async (messages) => {
    if (slow) await sleep(1500);
    const item = initialCallItem(messages);
    if (broken && (item === "advbench-4" || item === "advbench-7")) return { status: 400, body: JSON.stringify({ error: { message: "scripted bad request", type: "invalid_request_error" } }) };
    return fx.harmfulAndBenignReply(messages);
  });
  const out = join(dir, "out");
  const args = (...extra: string[]) => [
    "eval", "jailbreak", "--base-url", srv.url, "--model", "standin", "--defense", "none",
    "--data-dir", dir, "--output", out, "--json", "--no-progress", "--item-attempts", "1", ...extra,
  ];
  try {
    const first = await runCliChild(args());
    assert.equal(first.code, 1, "items recorded as errors give exit code 1");
    assert.equal(first.json.errors, 2);
    assert.equal(first.json.done, N - 2);
    const results = JSON.parse(readFileSync(join(out, "results.json"), "utf8"));
    assert.deepEqual(results.errors.map((e: any) => e.id).sort(), ["advbench-4", "advbench-7"]);
    assert.match(results.errors[0].error, /400.*scripted bad request/);
    assert.match(readFileSync(join(out, "summary.md"), "utf8"), /Errors \(2\)/);

    broken = false;
    const calls0 = srv.calls.length;
    const second = await runCliChild(args());
    assert.equal(second.code, 1);
    assert.equal(srv.calls.length, calls0, "without --retry-errors nothing is re-run");
    assert.equal(second.json.errors, 2);

    const third = await runCliChild(args("--retry-errors"));
    assert.equal(third.code, 0, third.stderr);
    assert.equal(srv.calls.length, calls0 + 2, "only the two failed items are re-run");
    assert.equal(third.json.errors, 0);
    assert.equal(third.json.done, N);

    // A second process on the same output directory is refused while the first runs.
    slow = true;
    const bigger = join(dir, "lock");
    const a = startCli([...args("--limit", String(N)).map((x) => (x === out ? bigger : x)), "--seed", "3"]);
    const t0 = Date.now();
    while (!existsSync(join(bigger, "eval.lock")) && Date.now() - t0 < 10_000) await sleep(20);
    const b = await runCliChild([...args("--limit", String(N)).map((x) => (x === out ? bigger : x)), "--seed", "3"]);
    a.child.kill("SIGKILL");
    await a.done;
    assert.equal(b.code, 2, b.stderr);
    assert.match(b.stderr, /another eval \(pid \d+\) is writing there/);
  } finally {
    await srv.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
