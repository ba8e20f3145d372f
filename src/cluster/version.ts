/**
 * The code version a job carries: the package version and a hash of the built code that decides the
 * numbers (dist/src of engine, lab, eval, world, cac, util and cluster, plus dist/wasm). A worker whose
 * hash differs refuses the job: its numbers could differ in the last bits from those of the code that
 * planned the sweep. Hashing the build rather than asking git also catches uncommitted changes and
 * works in an installed package.
 *
 * SELFCORRECT_CODE_VERSION overrides the computed value (the tests use it to play a worker of another
 * version; it is also a way to pin a version across builds that are known to agree).
 */
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const DIST_SRC = join(dirname(fileURLToPath(import.meta.url)), "..");
const ROOT = join(DIST_SRC, "..", "..");
const HASHED = ["engine", "lab", "eval", "world", "cac", "util", "cluster"];

function files(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...files(p));
    else if (/\.(js|wasm)$/.test(name)) out.push(p);
  }
  return out;
}

let cached: string | undefined;

export function codeVersion(): string {
  const override = process.env.SELFCORRECT_CODE_VERSION;
  if (override) return override;
  if (cached) return cached;
  const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string };
  const h = createHash("sha256");
  for (const f of [...HASHED.flatMap((d) => files(join(DIST_SRC, d))), ...files(join(ROOT, "dist", "wasm"))]) {
    h.update(relative(ROOT, f)).update("\0").update(readFileSync(f)).update("\0");
  }
  cached = `${pkg.version}+${h.digest("hex").slice(0, 12)}`;
  return cached;
}
