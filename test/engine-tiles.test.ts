// The GEMM tiles in tiles.generated.ts are the generator's output, not hand edits: an edit to either
// side alone would otherwise go unnoticed (the kernels would still pass, running other code than the
// generator says).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";

const dir = resolve(process.cwd(), "src/engine/kernels/assembly");

test("tiles.generated.ts is exactly what gen-tiles.mjs generates", () => {
  const r = spawnSync(process.execPath, [resolve(dir, "gen-tiles.mjs")], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  const committed = readFileSync(resolve(dir, "tiles.generated.ts"), "utf8");
  if (r.stdout === committed) return;
  const want = r.stdout.split("\n");
  const got = committed.split("\n");
  const i = want.findIndex((line, k) => line !== got[k]);
  const at = i < 0 ? Math.min(want.length, got.length) : i;
  assert.fail(
    `tiles.generated.ts differs from the generator at line ${at + 1}:\n  generator: ${want[at] ?? "(end)"}\n  file:      ${got[at] ?? "(end)"}\n` +
      "run `node src/engine/kernels/assembly/gen-tiles.mjs --write` and `npm run build:wasm`",
  );
});
