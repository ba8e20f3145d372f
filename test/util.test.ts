import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, readdirSync, rmSync, chmodSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { z } from "zod";
import { Rng } from "../src/util/rng.js";
import { writeJsonAtomic, ensureWritableDir, fileFingerprint } from "../src/util/fs.js";
import { parseOrThrow, UserError } from "../src/util/errors.js";
import { formatDuration } from "../src/util/progress.js";

test("Rng: same seed gives the same stream; restored state continues it exactly", () => {
  const a = new Rng(42);
  const b = new Rng(42);
  for (let i = 0; i < 100; i++) assert.equal(a.uniform(), b.uniform());
  a.normal(); // leaves a cached spare normal in the state
  const saved = a.getState();
  const next = [a.normal(), a.uniform(), a.nextU32()];
  const c = Rng.fromState(JSON.parse(JSON.stringify(saved)));
  assert.deepEqual([c.normal(), c.uniform(), c.nextU32()], next);
  assert.notEqual(new Rng(1).uniform(), new Rng(2).uniform());
});

test("Rng: uniform and normal have the right first two moments", () => {
  const r = new Rng(7);
  const n = 200_000;
  let su = 0, su2 = 0, sn = 0, sn2 = 0;
  for (let i = 0; i < n; i++) {
    const u = r.uniform();
    assert.ok(u >= 0 && u < 1);
    su += u; su2 += u * u;
    const g = r.normal();
    sn += g; sn2 += g * g;
  }
  assert.ok(Math.abs(su / n - 0.5) < 0.005);
  assert.ok(Math.abs(su2 / n - 1 / 3) < 0.005);
  assert.ok(Math.abs(sn / n) < 0.01);
  assert.ok(Math.abs(sn2 / n - 1) < 0.01);
});

test("writeJsonAtomic replaces the file whole and leaves no temporary files", () => {
  const dir = mkdtempSync(join(tmpdir(), "sc-util-"));
  try {
    const p = join(dir, "sub", "results.json");
    writeJsonAtomic(p, { a: 1 });
    writeJsonAtomic(p, { a: 2, b: [1, 2] });
    assert.deepEqual(JSON.parse(readFileSync(p, "utf8")), { a: 2, b: [1, 2] });
    assert.deepEqual(readdirSync(join(dir, "sub")), ["results.json"]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("ensureWritableDir names the flag when the directory cannot be written", { skip: process.getuid?.() === 0 ? "root can write anywhere" : false }, () => {
  const dir = mkdtempSync(join(tmpdir(), "sc-util-"));
  try {
    chmodSync(dir, 0o500);
    assert.throws(() => ensureWritableDir(join(dir, "x"), "--output"), /--output/);
  } finally {
    chmodSync(dir, 0o700);
    rmSync(dir, { recursive: true, force: true });
  }
});

test("ensureWritableDir rejects a path under a regular file", () => {
  const dir = mkdtempSync(join(tmpdir(), "sc-util-"));
  try {
    writeJsonAtomic(join(dir, "file"), {});
    assert.throws(() => ensureWritableDir(join(dir, "file", "out"), "--output"), (e: unknown) => e instanceof UserError && /--output/.test((e as Error).message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("parseOrThrow names each bad field", () => {
  const schema = z.object({ layers: z.number().int().positive(), lr: z.number().finite() });
  assert.throws(() => parseOrThrow(schema, { layers: 0, lr: Infinity }, "model config"), (e: unknown) => {
    const m = (e as Error).message;
    return e instanceof UserError && m.includes("model config") && m.includes("layers") && m.includes("lr");
  });
  assert.deepEqual(parseOrThrow(schema, { layers: 2, lr: 1e-4 }, "x"), { layers: 2, lr: 1e-4 });
});

test("formatDuration", () => {
  assert.equal(formatDuration(5), "00:05");
  assert.equal(formatDuration(3725), "1:02:05");
  assert.equal(formatDuration(NaN), "--:--");
});

test("fileFingerprint: the same bytes give the same fingerprint, a change at either end another", () => {
  const dir = mkdtempSync(join(tmpdir(), "fingerprint-"));
  try {
    const big = Buffer.alloc(3 << 20, 7);
    const a = join(dir, "a.bin");
    const b = join(dir, "b.bin");
    writeFileSync(a, big);
    writeFileSync(b, big);
    assert.equal(fileFingerprint(a), fileFingerprint(b), "a copy keeps its fingerprint");
    for (const at of [0, big.length - 1]) {
      const changed = Buffer.from(big);
      changed[at] = 8;
      writeFileSync(b, changed);
      assert.notEqual(fileFingerprint(b), fileFingerprint(a), `byte ${at} changed`);
    }
    writeFileSync(b, big.subarray(0, big.length - 1));
    assert.notEqual(fileFingerprint(b), fileFingerprint(a), "another size");
    writeFileSync(a, "small");
    writeFileSync(b, "small");
    assert.equal(fileFingerprint(a), fileFingerprint(b));
    assert.match(fileFingerprint(a), /^sha256-ends:[0-9a-f]{32}$/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
