// Bad data gives a clear error naming the file and the line,
// exit code 2, nothing is sent to the model and no results are written as if complete. The loaders'
// own error tests (and the fetcher's checksum test) live in test/eval-data-*.test.ts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startScriptedServer } from "./support/scripted-openai-server.js";
import { runCliChild } from "./support/eval-cli.js";
import * as fx from "./support/eval-fixtures.js";

test("bad data: missing CSV column, non-JSON JSONL line, unknown BBQ category, bad flags -> exit 2, file and line named, nothing written", async () => {
  const dir = mkdtempSync(join(tmpdir(), "eval-bad-"));
  const srv = await startScriptedServer((m) => fx.harmfulAndBenignReply(m));
  const base = ["--base-url", srv.url, "--model", "standin", "--data-dir", dir, "--json", "--no-progress"];
  try {
    // A complete earlier run in the same output directory.
    fx.writeAdvBench(dir, 6);
    const out = join(dir, "out");
    const ok = await runCliChild(["eval", "jailbreak", ...base, "--output", out, "--defense", "none"]);
    assert.equal(ok.code, 0, ok.stderr);
    const callsAfterOk = srv.calls.length;

    // 1. AdvBench CSV without its `target` column.
    const csv = join(dir, "advbench", "harmful_behaviors.csv");
    writeFileSync(csv, "goal\nBehavior 000: write plan number 0\n");
    const out1 = join(dir, "out1");
    const r1 = await runCliChild(["eval", "jailbreak", ...base, "--output", out1]);
    assert.equal(r1.code, 2, r1.stderr);
    assert.match(r1.stderr, new RegExp(`${csv.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}: line 1: missing column 'target'`));
    assert.ok(!existsSync(join(out1, "results.json")) && !existsSync(join(out1, "eval.sqlite")), "nothing written for a bad input");

    // 2. A BBQ JSONL whose third line is not JSON.
    const designs = fx.bbqDesigns(4);
    fx.writeBbq(dir, designs);
    const jsonl = join(dir, "bbq", "Religion.jsonl");
    const lines = readFileSync(jsonl, "utf8").split("\n");
    lines[2] = "{not json";
    writeFileSync(jsonl, lines.join("\n"));
    const out2 = join(dir, "out2");
    const r2 = await runCliChild(["eval", "bbq", ...base, "--output", out2]);
    assert.equal(r2.code, 2, r2.stderr);
    assert.match(r2.stderr, /Religion\.jsonl: line 3: not valid JSON/);
    assert.ok(!existsSync(join(out2, "results.json")));

    // 3. An unknown BBQ category.
    const r3 = await runCliChild(["eval", "bbq", ...base, "--output", join(dir, "out3"), "--categories", "Age,Astrology"]);
    assert.equal(r3.code, 2);
    assert.match(r3.stderr, /unknown BBQ category 'Astrology'; valid categories: Age, /);

    // 4. A JSONL record with a wrong field type is named by line and field.
    const age = join(dir, "bbq", "Age.jsonl");
    appendFileSync(age, JSON.stringify({ example_id: 99, question_index: "1", question_polarity: "sideways" }) + "\n");
    const r4 = await runCliChild(["eval", "bbq", ...base, "--output", join(dir, "out4"), "--categories", "Age"]);
    assert.equal(r4.code, 2);
    assert.match(r4.stderr, /Age\.jsonl: line 5: invalid BBQ record: question_polarity/);

    // 5. Bad flags and a judge without a judge model.
    const r5 = await runCliChild(["eval", "jailbreak", ...base, "--output", join(dir, "out5"), "--concurrency", "0"]);
    assert.equal(r5.code, 2);
    assert.match(r5.stderr, /--concurrency must be at least 1/);
    fx.writeAdvBench(dir, 6);
    const r6 = await runCliChild(["eval", "jailbreak", ...base, "--output", join(dir, "out6"), "--judge", "substring,llm"]);
    assert.equal(r6.code, 2);
    assert.match(r6.stderr, /--judge-base-url/);
    const r7 = await runCliChild(["eval", "jailbreak", ...base, "--output", join(dir, "out7"), "--judge", "vibes"]);
    assert.equal(r7.code, 2);
    assert.match(r7.stderr, /unknown judge/);

    assert.equal(srv.calls.length, callsAfterOk, "no bad run sent anything to the model");
    // The earlier complete run's results are untouched by the failed ones.
    assert.equal(JSON.parse(readFileSync(join(out, "results.json"), "utf8")).status, "complete");
  } finally {
    await srv.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
