#!/usr/bin/env node
// Runs the named test files (test/foo.test.ts or foo) after compiling the TypeScript, without the WebAssembly
// build that `npm test` runs first: `npm run test:one -- test/cac-loop.test.ts [more files] [--test-name-pattern=x]`.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";

const args = process.argv.slice(2);
const files = args.filter((a) => !a.startsWith("--"));
const nodeFlags = args.filter((a) => a.startsWith("--"));
if (files.length === 0) {
  console.error("usage: npm run test:one -- test/<name>.test.ts [...] [--test-name-pattern=<regex>]");
  process.exit(2);
}
if (!existsSync("dist/wasm/kernels.wasm")) {
  console.error("dist/wasm is missing: run `npm run build:wasm` once (npm ci does it)");
  process.exit(2);
}
const tsc = spawnSync(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "."], { stdio: "inherit" });
if (tsc.status !== 0) process.exit(tsc.status ?? 1);
const compiled = files.map((f) => {
  const base = f.replace(/^(\.\/)?(dist\/)?/, "").replace(/\.(ts|js)$/, "");
  const path = `dist/${base.startsWith("test/") ? base : `test/${base}`}.js`;
  if (!existsSync(path)) {
    console.error(`no compiled test at ${path} (from "${f}")`);
    process.exit(2);
  }
  return path;
});
const run = spawnSync(process.execPath, ["--test", "--test-timeout=600000", ...nodeFlags, ...compiled], { stdio: "inherit" });
process.exit(run.status ?? 1);
