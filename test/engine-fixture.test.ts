/**
 * The engine (float32, WASM kernels) against PyTorch float64 fixtures: forward, the Plackett-Luce
 * loss and every gradient. test/engine-fixtures/README.md says which script wrote each fixture.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { tmpdir } from "node:os";
import { loadFixture, verifyReference, withinTolerance, TOLERANCES } from "../src/lab/reference.js";

const root = process.cwd();
const tiny = resolve(root, "test/engine-fixtures/ica_gpt_tiny.json");
const fixtures = [
  tiny,
  resolve(root, "test/engine-fixtures/ica_gpt_d4_n6_e12_h3_l3_b3.json"),
  resolve(root, "test/engine-fixtures/ica_gpt_mixed_blocks.json"),
];
const cli = resolve(root, "dist/src/cli/main.js");

for (const file of fixtures) {
  for (const threads of [1, 2]) {
    test(`fixture ${file.split("/").pop()}: loss and every gradient within tolerance (wasm, ${threads} thread(s))`, async () => {
      const r = await verifyReference(loadFixture(file), { threads, kernels: "wasm" });
      assert.ok(r.loss_rel_err <= TOLERANCES.loss_rel_err, `loss_rel_err ${r.loss_rel_err}`);
      assert.ok(r.grad_max_rel_err <= TOLERANCES.grad_max_rel_err, `grad_max_rel_err ${r.grad_max_rel_err} at ${r.grad_worst_param}`);
      assert.ok(r.pred_max_abs_err < 1e-4, `pred_max_abs_err ${r.pred_max_abs_err}`);
      assert.ok(withinTolerance(r));
    });
  }
}

test("fixture: the plain-JS reference kernels agree too", async () => {
  const r = await verifyReference(loadFixture(fixtures[2]!), { threads: 1, kernels: "reference" });
  assert.ok(withinTolerance(r), JSON.stringify(r));
});

test("verify-reference CLI: JSON on the last line, exit 0 in tolerance, 1 out of tolerance, 2 on a bad fixture", () => {
  const ok = spawnSync(process.execPath, [cli, "lab", "verify-reference", "--fixture", tiny, "--json"], { encoding: "utf8" });
  assert.equal(ok.status, 0, ok.stderr);
  const lines = ok.stdout.trim().split("\n");
  const j = JSON.parse(lines[lines.length - 1]!);
  for (const k of ["loss_rel_err", "pred_max_abs_err", "grad_max_rel_err"]) assert.equal(typeof j[k], "number", k);

  const dir = mkdtempSync(join(tmpdir(), "engine-fixture-"));
  try {
    const f = JSON.parse(readFileSync(tiny, "utf8"));
    f.loss *= 1.001; // a reference loss the engine cannot match
    writeFileSync(join(dir, "off.json"), JSON.stringify(f));
    const off = spawnSync(process.execPath, [cli, "lab", "verify-reference", "--fixture", join(dir, "off.json"), "--json"], { encoding: "utf8" });
    assert.equal(off.status, 1, off.stderr);
    assert.equal(JSON.parse(off.stdout.trim().split("\n").pop()!).ok, false);

    f.config.heads = 3; // 3 does not divide embd 8
    writeFileSync(join(dir, "bad.json"), JSON.stringify(f));
    const bad = spawnSync(process.execPath, [cli, "lab", "verify-reference", "--fixture", join(dir, "bad.json"), "--json"], { encoding: "utf8" });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /nHead = 3 does not divide nEmbd = 8/);

    delete f.inputs.rs;
    writeFileSync(join(dir, "missing.json"), JSON.stringify(f));
    const missing = spawnSync(process.execPath, [cli, "lab", "verify-reference", "--fixture", join(dir, "missing.json")], { encoding: "utf8" });
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /inputs\.rs/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
