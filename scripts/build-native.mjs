// Builds the native AVX-512 matmuls (src/engine/kernels/native/matmul.c) with node-gyp into
// dist/native/matmul.node. Run by `npm run build:native` (and so by `npm ci` via prepare).
//
// Optional: without a C compiler, Node's headers or an x86-64 CPU the engine uses its WebAssembly
// matmuls, which give the same bits, only slower; so a failed build warns and exits 0, unless
// SELFCORRECT_REQUIRE_NATIVE=1 (CI sets it, so a broken build cannot pass unnoticed).
//   --out-dir DIR   builds elsewhere (load it with SELFCORRECT_NATIVE_DIR=DIR)
//   --force         rebuilds even when the addon is newer than its sources
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, renameSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const srcDir = path.join(root, "src/engine/kernels/native");
const outDirArg = process.argv.indexOf("--out-dir");
const outDir = outDirArg > 0 && process.argv[outDirArg + 1] ? path.resolve(process.argv[outDirArg + 1]) : path.join(root, "dist/native");
const outFile = path.join(outDir, "matmul.node");
const required = process.env.SELFCORRECT_REQUIRE_NATIVE === "1";

function giveUp(why) {
  if (required) {
    console.error(`build-native: ${why} (SELFCORRECT_REQUIRE_NATIVE=1)`);
    process.exit(1);
  }
  console.error(`build-native: skipped, ${why}; the engine uses its WebAssembly matmuls (the same results, slower)`);
  process.exit(0);
}

if (process.arch !== "x64") giveUp(`the native matmuls are x86-64 only (this is ${process.arch})`);

const sources = ["matmul.c", "binding.gyp"].map((f) => path.join(srcDir, f));
if (!process.argv.includes("--force") && existsSync(outFile)) {
  const built = statSync(outFile).mtimeMs;
  if (sources.every((f) => statSync(f).mtimeMs < built)) {
    console.error(`build-native: ${path.relative(root, outFile)} is up to date`);
    process.exit(0);
  }
}

// npm runs scripts with npm_config_node_gyp pointing at its own node-gyp, and npm_config_nodedir at
// the headers it is set to build against (so nothing is downloaded); outside npm, look beside npm.
function nodeGyp() {
  if (process.env.npm_config_node_gyp) return process.env.npm_config_node_gyp;
  const npmCli = process.env.npm_execpath;
  const candidates = [
    npmCli && path.join(path.dirname(npmCli), "..", "node_modules/node-gyp/bin/node-gyp.js"),
    path.join(path.dirname(process.execPath), "..", "lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js"),
  ].filter(Boolean);
  return candidates.find((c) => existsSync(c)) ?? null;
}

const gyp = nodeGyp();
if (!gyp) giveUp("node-gyp was not found (it ships with npm)");
const args = [gyp, "rebuild", "--directory", srcDir];
// Node's own headers where they are installed beside it (distribution packages, official tarballs).
const besideNode = path.resolve(path.dirname(process.execPath), "..");
const nodedir = process.env.npm_config_nodedir || (existsSync(path.join(besideNode, "include/node/node_api.h")) ? besideNode : null);
if (nodedir) args.push(`--nodedir=${nodedir}`);
const t0 = Date.now();
try {
  execFileSync(process.execPath, args, { stdio: ["ignore", "ignore", "pipe"] });
} catch (err) {
  const stderr = String(err.stderr ?? "").split("\n").filter((l) => /error|ERR!/i.test(l)).slice(0, 8).join("\n");
  giveUp(`node-gyp failed:\n${stderr}`);
}
mkdirSync(outDir, { recursive: true });
const tmp = `${outFile}.${process.pid}.tmp`;
copyFileSync(path.join(srcDir, "build/Release/matmul.node"), tmp);
renameSync(tmp, outFile); // a running process keeps the file it loaded
console.error(`build-native: ${path.relative(root, outFile)} (${statSync(outFile).size} bytes, ${Date.now() - t0} ms)`);
