// `selfcorrect lab theory` as a user runs it: a real child process, real files.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseGammas } from "../src/lab/theory/index.js";
import { UserError } from "../src/util/errors.js";

const MAIN = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));

function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [MAIN, "lab", "theory", ...args], { encoding: "utf8", timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test("lab theory --json: last stdout line is the summary; the SVG plot and JSON land in --report-dir", () => {
  const dir = mkdtempSync(join(tmpdir(), "theory-cli-"));
  try {
    const r = cli(["--loss", "pl", "--n", "5", "--gamma", "1e8,10,1000", "--steps", "2", "--tasks", "8", "--seed", "3", "--report-dir", dir, "--json"]);
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trim().split("\n");
    const out = JSON.parse(lines[lines.length - 1]!);
    assert.equal(out.loss, "pl");
    assert.equal(out.n, 5);
    assert.equal(out.steps, 2);
    assert.deepEqual(out.rows.map((row: { gamma: number }) => row.gamma), [10, 1000, 1e8], "sorted");
    for (const row of out.rows) assert.equal(typeof row.max_abs_err, "number");
    assert.ok(out.rows[2].max_abs_err <= 1e-6);
    assert.ok(out.rows[0].max_abs_err > out.rows[2].max_abs_err);
    assert.ok(out.loss_reference[2] < out.loss_reference[0], "the linear model's loss decreases");
    const svg = readFileSync(join(dir, "theory-pl-n5-k2.svg"), "utf8");
    assert.match(svg, /^<svg/);
    assert.match(svg, /gamma/);
    const saved = JSON.parse(readFileSync(join(dir, "theory-pl-n5-k2.json"), "utf8"));
    assert.deepEqual(saved.rows, out.rows);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("lab theory prints a gamma table without --json", () => {
  const dir = mkdtempSync(join(tmpdir(), "theory-cli-"));
  try {
    const r = cli(["--loss", "bt", "--n", "3", "--gamma", "1,1e6", "--tasks", "4", "--report-dir", dir]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /Thm 3\.2/);
    assert.match(r.stdout, /\| 1e\+6 \|/);
    assert.ok(existsSync(join(dir, "theory-bt-n3-k1.svg")));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("lab theory rejects bad flags with exit code 2 and a message naming the flag", () => {
  const cases: [string[], RegExp][] = [
    [["--n", "1"], /--n must be at least 2/],
    [["--gamma", "0"], /--gamma: "0" is not a positive number/],
    [["--gamma", "1e200"], /largest usable/],
    [["--loss", "dpo"], /--loss must be one of bt, pl/],
  ];
  for (const [args, re] of cases) {
    const r = cli([...args, "--tasks", "1", "--report-dir", join(tmpdir(), "theory-cli-unused")]);
    assert.equal(r.status, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, re);
  }
});

test("parseGammas: sorted, deduplicated, each in (0, GAMMA_MAX]", () => {
  assert.deepEqual(parseGammas("100, 1,1e3,1"), [1, 100, 1000]);
  assert.throws(() => parseGammas(""), UserError);
  assert.throws(() => parseGammas("abc"), UserError);
  assert.throws(() => parseGammas("-5"), UserError);
});
