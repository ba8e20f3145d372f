// `eval jailbreak --redis` over 200 items with three real worker processes, one killed with -9 mid-run,
// against the SCRIPTED STAND-IN model of test/support/eval-fixtures.ts (deterministic per item): the
// results equal the single-process run's, every item has exactly one row, none is lost.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { startScriptedServer } from "./support/scripted-openai-server.js";
import { runCliChild } from "./support/eval-cli.js";
import * as fx from "./support/eval-fixtures.js";
import { testRedis } from "./support/redis.js";
import { completions, startWorkerProc, type WorkerProc } from "./support/cluster.js";
import { waitFor } from "./support/wait.js";
import { sleep } from "../src/util/sleep.js";

const N = 200;

/** The parts of results.json that must not depend on where the items ran (timings aside). */
function essence(r: any) {
  const records = r.records.map((x: any) => [x.id, x.prompt, x.answers, x.checks, x.calls.length]);
  return [r.status, r.runKey, r.counts, r.jailbreak.asr, r.jailbreak.selfCheck, r.cost.calls, r.cost.tokens, records];
}

test("eval jailbreak --redis: three workers, one killed mid-run, same results as one process", { timeout: 180_000 }, async (t) => {
  const redis = await testRedis(t, { db: 2 });
  if (!redis) return;
  const dir = mkdtempSync(join(tmpdir(), "cluster-eval-"));
  fx.writeAdvBench(dir, N);
  const srv = await startScriptedServer(async (messages) => {
    await sleep(5);
    return fx.harmfulAndBenignReply(messages);
  });
  const args = (out: string, ...extra: string[]) => [
    "eval", "jailbreak", "--base-url", srv.url, "--model", "standin", "--defense", "cac", "--rounds", "1",
    "--data-dir", dir, "--output", out, "--json", "--no-progress", ...extra,
  ];
  const workers: WorkerProc[] = [];
  try {
    const reference = await runCliChild(args(join(dir, "single")), 120_000);
    assert.equal(reference.code, 0, reference.stderr);

    for (let i = 0; i < 3; i++) workers.push(startWorkerProc(redis.url, ["--lock-ms", "3000", "--concurrency", "2"]));
    const out = join(dir, "cluster");
    const run = runCliChild(args(out, "--redis", redis.url, "--shard-size", "8", "--shards", "6"), 150_000);
    const victim = workers[0]!;
    await waitFor(() => /completed by/.test(victim.log()), 60_000, { what: "the first worker to finish a shard", everyMs: 50 });
    await victim.kill("SIGKILL");
    const r = await run;
    assert.equal(r.code, 0, r.stderr);

    const got = JSON.parse(readFileSync(join(out, "results.json"), "utf8"));
    const ref = JSON.parse(readFileSync(join(dir, "single", "results.json"), "utf8"));
    assert.deepEqual(essence(got), essence(ref));
    assert.deepEqual(r.json.asr, reference.json.asr);
    assert.equal(got.counts.done, N);
    const db = new Database(join(out, "eval.sqlite"), { readonly: true });
    const rows = db.prepare("SELECT item_id, count(*) AS n FROM results GROUP BY item_id").all() as { n: number }[];
    db.close();
    assert.equal(rows.length, N, "no item lost");
    assert.ok(rows.every((x) => x.n === 1), "no duplicate row");
    // The killed worker's shards were finished by the others: every shard completed exactly once.
    for (const [id, n] of completions(workers)) assert.equal(n, 1, `${id} completed ${n} times`);
  } finally {
    for (const w of workers) await w.kill();
    await srv.close();
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
