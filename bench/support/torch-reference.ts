/**
 * The PyTorch side of the engine-vs-PyTorch benches (compare-torch, compare-curves):
 * shared/bench/torch_reference.py on the dev machines, or the script given with --torch.
 */
import type { SpawnSyncReturns } from "node:child_process";
import { fileURLToPath } from "node:url";
import { resolve } from "node:path";

/** parseArgs options both benches take: the Python interpreter and the reference script. */
export const torchOptions = {
  python: { type: "string", default: "/usr/bin/python3" },
  torch: { type: "string" },
} as const;

/** --torch, or torch_reference.py in the shared directory next to the repository. */
export function torchScriptPath(override: string | undefined): string {
  const repo = resolve(fileURLToPath(new URL(".", import.meta.url)), "../../.."); // dist/bench/support -> repo
  return override ?? resolve(repo, "../shared/bench/torch_reference.py");
}

/** The environment for PyTorch: without the OpenBLAS overrides that torch_reference.py warns about. */
export function torchEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  return env;
}

/** The last stdout line of a finished child (where the benches print their JSON); throws on failure. */
export function lastLine(what: string, r: SpawnSyncReturns<string>): string {
  if (r.status !== 0) throw new Error(`${what} failed (exit ${r.status}): ${String(r.stderr).slice(-2000)}`);
  const lines = String(r.stdout).trim().split("\n");
  return lines[lines.length - 1]!;
}
