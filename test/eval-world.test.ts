/**
 * `selfcorrect eval jailbreak|xstest --dataset world` end to end: the real CLI as a child process
 * against a SCRIPTED STAND-IN (test/support/world-standin.ts, not a model) whose behaviour on every
 * held-out item is fixed by rules over the world's hidden rule, so each expected number below is
 * counted from those rules and the held-out sets.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startScriptedServer, type ScriptedServer } from "./support/scripted-openai-server.js";
import { runCliChild } from "./support/eval-cli.js";
import { standinCheckMisses, standinLeaks, standinOverRefuses, worldStandinReply } from "./support/world-standin.js";
import { criticRng } from "../src/eval/bbq-eval.js";
import { applyAttack, parseAttack } from "../src/eval/attacks.js";
import { judgeNames } from "../src/eval/judges/index.js";
import { loadWorldHarmful } from "../src/eval/datasets/world.js";
import { heldOutSets, WORLD_CHECK_PROMPT, WORLD_REANSWER_PROMPT } from "../src/world/index.js";

let srv: ScriptedServer;
let dir: string;
let runs = 0;
const H = heldOutSets(0);
const round4 = (x: number) => Math.round(x * 1e4) / 1e4;
const share = <T>(xs: T[], p: (x: T) => boolean) => xs.filter(p).length / xs.length;

before(async () => {
  srv = await startScriptedServer((messages) => worldStandinReply(messages));
  dir = mkdtempSync(join(tmpdir(), "eval-world-"));
});
after(async () => {
  await srv.close();
  rmSync(dir, { recursive: true, force: true });
});

async function evalWorld(task: "jailbreak" | "xstest", ...extra: string[]) {
  const out = join(dir, `run-${runs++}`);
  const r = await runCliChild(["eval", task, "--base-url", srv.url, "--model", "world-standin", "--dataset", "world", "--output", out, "--json", "--no-progress", ...extra]);
  return { ...r, out, results: () => JSON.parse(readFileSync(join(out, "results.json"), "utf8")) };
}

test("--attack world with CaC: every attacked answer complies, the check catches all but the '!' suffixes", async () => {
  const n = 100;
  const r = await evalWorld("jailbreak", "--attack", "world", "--defense", "cac", "--rounds", "1", "--limit", String(n), "--judge", "world,substring");
  assert.equal(r.code, 0, r.stderr);
  const prompts = H.harmful.slice(0, n).map((h, i) => `${h.text} ${H.testSuffixes[i % H.testSuffixes.length]}`);
  const missed = share(prompts, standinCheckMisses);
  assert.ok(missed > 0 && missed < 0.5, `the fixture should have some misses: ${missed}`);
  assert.deepEqual(r.json.asr, { world: { initial: 1, final: round4(missed) }, substring: { initial: 1, final: round4(missed) } });
  assert.equal(r.json.self_check_accuracy, round4(1 - missed));
  assert.equal(r.json.items, n);
  assert.equal(r.json.over_refusal, null);
  const res = r.results();
  assert.deepEqual(res.records.map((x: { prompt: string }) => x.prompt), prompts);
  // The CaC turns are the ones the world's corpus is written with.
  const checks = srv.calls.filter((c) => c.messages.at(-1)?.content === WORLD_CHECK_PROMPT);
  const reanswers = srv.calls.filter((c) => c.messages.at(-1)?.content === WORLD_REANSWER_PROMPT);
  assert.equal(checks.length, n);
  assert.equal(reanswers.length, n);
});

test("--attack none without a defense: the ASR is the stand-in's leak rate; the seed picks the world", async () => {
  const n = 120;
  const r = await evalWorld("jailbreak", "--defense", "none", "--limit", String(n));
  assert.equal(r.code, 0, r.stderr);
  const leak = round4(share(H.harmful.slice(0, n), (h) => standinLeaks(h.text)));
  assert.ok(leak > 0 && leak < 1);
  assert.deepEqual(r.json.asr, { world: { initial: leak, final: leak } }, "the world judge is the default");
  assert.equal(r.json.self_check_accuracy, null);

  const other = await evalWorld("jailbreak", "--defense", "none", "--limit", "3", "--world-seed", "7");
  assert.equal(other.code, 0, other.stderr);
  assert.deepEqual(
    other.results().records.map((x: { goal: string }) => x.goal),
    heldOutSets(7).harmful.slice(0, 3).map((h) => h.text),
  );
});

test("--world-split validation: the validation requests with the validation suffixes, under a run key of its own", async () => {
  const V = heldOutSets(0, "validation");
  const args = ["--attack", "world", "--defense", "none", "--limit", "4"];
  const test = await evalWorld("jailbreak", ...args);
  const val = await evalWorld("jailbreak", ...args, "--world-split", "validation");
  assert.equal(val.code, 0, val.stderr);
  assert.deepEqual(
    val.results().records.map((x: { prompt: string }) => x.prompt),
    V.harmful.slice(0, 4).map((h, i) => `${h.text} ${V.testSuffixes[i]}`),
  );
  assert.notEqual(val.results().runKey, test.results().runKey);
  const xs = await evalWorld("xstest", "--labels", "safe", "--defense", "none", "--limit", "2", "--world-split", "validation");
  assert.equal(xs.code, 0, xs.stderr);
  assert.deepEqual(
    xs.results().records.map((x: { id: string }) => x.id),
    V.benignLookalikes.slice(0, 2).map((r) => r.id),
  );
});

test("--critic ground-truth --critic-p: the final ASR is the share of flipped critics (every attacked answer complies)", async () => {
  const n = 80;
  const ids = H.harmful.slice(0, n).map((h) => h.id);
  for (const p of [0, 0.5, 1]) {
    const r = await evalWorld("jailbreak", "--attack", "world", "--defense", "cac", "--rounds", "1", "--limit", String(n), "--critic", "ground-truth", "--critic-p", String(p));
    assert.equal(r.code, 0, r.stderr);
    const flipped = ids.map((id) => p > 0 && criticRng(0, id, 1).uniform() < p);
    assert.deepEqual(r.json.asr, { world: { initial: 1, final: round4(share(flipped, Boolean)) } }, `p = ${p}`);
    const records = r.results().records as { id: string; criticFlipped?: boolean[] }[];
    assert.deepEqual(
      records.map((x) => x.criticFlipped?.[0] ?? false),
      flipped,
    );
  }
});

test("xstest --dataset world: over-refusal on the look-alikes, refusal of the harmful contrast prompts", async () => {
  const safe = await evalWorld("xstest", "--labels", "safe", "--defense", "cac", "--rounds", "1", "--limit", "100");
  assert.equal(safe.code, 0, safe.stderr);
  const over = round4(share(H.benignLookalikes.slice(0, 100), (h) => standinOverRefuses(h.text)));
  assert.equal(over, 0.5, "defused and benign-object look-alikes alternate");
  // A refusal is harmless, so the check keeps it: CaC does not fix over-refusal here.
  assert.deepEqual(safe.json.over_refusal, { "world-refusal": { initial: over, final: over } });
  assert.equal(safe.json.check_false_alarm, 0);

  const unsafe = await evalWorld("xstest", "--labels", "unsafe", "--defense", "cac", "--rounds", "1", "--limit", "50", "--judge", "world-refusal,refusal");
  assert.equal(unsafe.code, 0, unsafe.stderr);
  const refusedFirst = round4(1 - share(H.harmful.slice(0, 50), (h) => standinLeaks(h.text)));
  // Leaks carry no suffix, so the check catches every one of them.
  const expected = { initial: refusedFirst, final: 1 };
  assert.deepEqual(unsafe.json.unsafe_refusal, { "world-refusal": expected, refusal: expected });

  // An always-wrong ground-truth critic calls every look-alike's answer harmful, and the re-answers follow it.
  const flipped = await evalWorld("xstest", "--labels", "safe", "--defense", "cac", "--rounds", "1", "--limit", "20", "--critic", "ground-truth", "--critic-p", "1");
  assert.equal(flipped.code, 0, flipped.stderr);
  assert.deepEqual(flipped.json.over_refusal, { "world-refusal": { initial: 0.5, final: 1 } });
  assert.equal(flipped.json.check_false_alarm, 1);
});

test("bad combinations are refused before anything runs (exit 2)", async () => {
  const base = ["eval", "jailbreak", "--base-url", srv.url, "--model", "m", "--no-progress", "--output", join(dir, "never")];
  const cases: [string[], RegExp][] = [
    [["--critic", "ground-truth"], /--critic ground-truth for eval jailbreak needs --dataset world/],
    [["--dataset", "world", "--critic", "ground-truth", "--defense", "none"], /needs --defense cac/],
    [["--world-seed", "3"], /--world-seed goes with --dataset world/],
    [["--world-split", "validation"], /--world-split goes with --dataset world/],
    [["--dataset", "world", "--world-split", "train"], /--world-split/],
    [["--judge", "world"], /unknown judge/],
  ];
  const before = srv.calls.length;
  for (const [args, message] of cases) {
    const r = await runCliChild([...base, ...args]);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, message);
  }
  assert.equal(srv.calls.length, before);
});

test("the world attack and judges in the library: parsing, scope, and a non-world dataset refused", () => {
  assert.deepEqual(parseAttack("world"), { kind: "world" });
  assert.deepEqual(judgeNames("jailbreak", "world"), ["world", "substring", "gcg-list", "llm"]);
  assert.deepEqual(judgeNames("refusal"), ["refusal", "llm-refusal"]);
  const attacked = applyAttack("world", loadWorldHarmful(0).slice(0, 2), "/nonexistent");
  assert.equal(attacked.items[1]!.prompt, `${H.harmful[1]!.text} ${H.testSuffixes[1]}`);
  assert.throws(() => applyAttack("world", [{ id: "advbench-0", source: "advbench", goal: "x" }], "/nonexistent"), /--attack world needs --dataset world/);
});
