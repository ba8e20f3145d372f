/**
 * The import graph follows the layers the folders name: cli → report / view → eval → cac / lab → engine
 * → util, with the synthetic world between eval and lab (ALLOWED below is the exact rule). A module may
 * import its own layer and the layers below it, never one above or beside it, and
 * nothing outside src/cli imports src/cli (the CLI only parses flags and calls the library, so a test
 * that needs its logic should find it in the library). Run over the TypeScript sources, not dist/, so a
 * type-only import counts too.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

/** Each layer and the layers it may import (its own is always allowed). */
const ALLOWED: Record<string, readonly string[]> = {
  util: [],
  engine: ["util"],
  lab: ["engine", "util"],
  cac: ["engine", "util"],
  // The synthetic self-correction world: its corpus, held-out sets and the LM trained on them.
  world: ["lab", "engine", "util"],
  eval: ["world", "cac", "lab", "engine", "util"],
  report: ["eval", "world", "cac", "lab", "engine", "util"],
  view: ["report", "eval", "world", "cac", "lab", "engine", "util"],
  // Scale-out on BullMQ/Redis workers: lab training jobs and eval shards (ChatModel types from cac).
  cluster: ["eval", "cac", "lab", "util"],
  cli: ["cluster", "view", "report", "eval", "world", "cac", "lab", "engine", "util"],
};

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...tsFiles(path));
    else if (/\.(ts|mts|tsx)$/.test(name) && !name.endsWith(".d.ts")) out.push(path);
  }
  return out;
}

/** Relative specifiers of static imports, re-exports and dynamic import()s. */
function relativeImports(source: string): string[] {
  const specs: string[] = [];
  const patterns = [/\bfrom\s+["'](\.[^"']+)["']/g, /\bimport\s*\(\s*["'](\.[^"']+)["']\s*\)/g, /^\s*import\s+["'](\.[^"']+)["']/gm];
  for (const re of patterns) for (const m of source.matchAll(re)) specs.push(m[1]!);
  return specs;
}

/** The layer (first folder under src/) of a path, or undefined when it is not under src/. */
function layerOf(path: string): string | undefined {
  const rel = relative(join(ROOT, "src"), path);
  if (rel.startsWith("..")) return undefined;
  const parts = rel.split(sep);
  return parts.length > 1 ? parts[0] : undefined;
}

// AssemblyScript sources compile to WebAssembly on their own and import nothing from the TypeScript side.
const srcFiles = tsFiles(join(ROOT, "src")).filter((f) => !f.includes(`${sep}assembly${sep}`));

test("every folder under src/ is a known layer", () => {
  const layers = new Set(srcFiles.map(layerOf).filter((l): l is string => l !== undefined));
  for (const layer of layers) assert.ok(layer in ALLOWED, `src/${layer} is not a layer the import rule knows; add it to ALLOWED with the layers it may use`);
  const loose = srcFiles.filter((f) => layerOf(f) === undefined).map((f) => relative(ROOT, f));
  assert.deepEqual(loose, [], "source files directly under src/ belong in a layer folder");
});

test("imports run one way: cli → report/view → eval → cac/lab → engine → util", () => {
  const violations: string[] = [];
  for (const file of srcFiles) {
    const from = layerOf(file)!;
    for (const spec of relativeImports(readFileSync(file, "utf8"))) {
      const to = layerOf(resolve(dirname(file), spec));
      if (to === undefined || to === from) continue;
      if (!(ALLOWED[from] ?? []).includes(to)) violations.push(`${relative(ROOT, file)} (${from}) imports ${spec} (${to})`);
    }
  }
  assert.deepEqual(violations, []);
});

test("nothing outside src/cli imports src/cli", () => {
  const importers = [...tsFiles(join(ROOT, "src")), ...tsFiles(join(ROOT, "test")), ...tsFiles(join(ROOT, "bench"))];
  const violations: string[] = [];
  for (const file of importers) {
    if (layerOf(file) === "cli") continue;
    for (const spec of relativeImports(readFileSync(file, "utf8"))) {
      if (layerOf(resolve(dirname(file), spec)) === "cli") violations.push(`${relative(ROOT, file)} imports ${spec}`);
    }
  }
  assert.deepEqual(violations, []);
});

test("the rule sees imports: a file that is known to import across layers is found", () => {
  // Guards the scanner itself: if the patterns stopped matching, the tests above would pass vacuously.
  const cliMain = readFileSync(join(ROOT, "src", "cli", "main.ts"), "utf8");
  assert.ok(relativeImports(cliMain).some((s) => s.includes("commands/")), "src/cli/main.ts should import its commands");
  assert.ok(srcFiles.length > 50, `only ${srcFiles.length} source files found under src/`);
});
