// 1,000 items at concurrency 32 against a SCRIPTED STAND-IN that answers
// 429 (with Retry-After) on 20% of calls and hangs on 2% of them, and always fails 1% of the items
// with HTTP 500: the run completes, every item is finished or recorded as an error with its reason,
// and the report counts them separately.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startScriptedServer } from "./support/scripted-openai-server.js";
import { runCliChild } from "./support/eval-cli.js";
import * as fx from "./support/eval-fixtures.js";
import { Rng } from "../src/util/rng.js";

test("1,000 items, concurrency 32, 20% 429 and 2% hangs: completes, errors counted separately with reasons", async () => {
  const dir = mkdtempSync(join(tmpdir(), "eval-faults-"));
  const N = 1000;
  fx.writeAdvBench(dir, N);
  const rng = new Rng(7);
  let rateLimited = 0;
  let hung = 0;
  const srv = await startScriptedServer((messages) => {
    const m = /Behavior (\d+)/.exec(messages.find((x) => x.role === "user")?.content ?? "");
    const i = m ? Number(m[1]) : -1;
    if (i % 100 === 7) return { status: 500 };
    const u = rng.uniform();
    if (u < 0.2) {
      rateLimited++;
      return { status: 429, headers: { "retry-after-ms": "20" } };
    }
    if (u < 0.22) {
      hung++;
      return { hang: true };
    }
    return fx.harmfulAndBenignReply(messages);
  });
  try {
    const out = join(dir, "out");
    const t0 = Date.now();
    const r = await runCliChild(
      [
        "eval", "jailbreak", "--base-url", srv.url, "--model", "standin", "--defense", "none",
        "--data-dir", dir, "--output", out, "--json", "--no-progress",
        "--concurrency", "32", "--timeout-ms", "400", "--retries", "2", "--item-timeout-ms", "4000", "--item-attempts", "2",
      ],
      120_000,
    );
    const seconds = (Date.now() - t0) / 1000;
    assert.equal(r.code, 1, `exit 1 because some items failed; stderr: ${r.stderr.slice(-500)}`);
    assert.ok(rateLimited > 100 && hung > 5, `the stand-in injected faults (${rateLimited} x 429, ${hung} hangs)`);
    const results = JSON.parse(readFileSync(join(out, "results.json"), "utf8"));
    assert.equal(results.status, "complete");
    assert.equal(results.counts.selected, N);
    assert.equal(results.counts.done + results.counts.errors, N, "every item finished or recorded as an error");
    assert.equal(results.counts.pending, 0);
    assert.equal(r.json.done, results.counts.done);
    assert.equal(r.json.errors, results.counts.errors);
    const errorIds = new Set(results.errors.map((e: any) => e.id));
    for (let i = 7; i < N; i += 100) assert.ok(errorIds.has(`advbench-${i}`), `item ${i} (always 500) is an error`);
    for (const e of results.errors) assert.ok(e.error.length > 10, `error of ${e.id} has a reason: ${e.error}`);
    assert.ok(results.errors.filter((e: any) => /HTTP 500/.test(e.error)).length >= 10, JSON.stringify(results.errors.slice(0, 5)));
    // Finished records are real answers, and the report shows both counts.
    assert.ok(results.records.every((x: any) => x.answers.length === 1 && !/unexpected/.test(x.answers[0])));
    assert.ok(results.rateLimit.rateLimited > 0, "the limiter saw the 429s");
    const md = readFileSync(join(out, "summary.md"), "utf8");
    assert.match(md, new RegExp(`\\| finished \\| ${results.counts.done} \\|`));
    assert.match(md, new RegExp(`\\| errors \\| ${results.counts.errors} \\|`));
    const html = readFileSync(join(out, "report.html"), "utf8");
    assert.match(html, /Errors \(\d+\)/);
    console.log(`# 1000 items: ${seconds.toFixed(1)} s, ${results.counts.done} done, ${results.counts.errors} errors, ${rateLimited} x 429, ${hung} hangs, min window ${results.rateLimit.minWindow}`);
    assert.ok(seconds < 90, `took ${seconds} s`);
  } finally {
    await srv.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
