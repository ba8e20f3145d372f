/**
 * The model `chat`, `serve` and `eval` use when no model is named: the LM trained on the synthetic
 * self-correction world (docs/world.md), shipped as one GGUF file inside the package, so the tool works
 * offline with nothing to download or serve. The engine runs it by default; node-llama-cpp can run the
 * very same file (--backend llama-cpp).
 *
 * $SELFCORRECT_DEFAULT_MODEL points elsewhere (tests, a retrained model); set it to "none" to have no
 * default at all, so that a missing model is an error even where the file ships.
 */
import { existsSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** Where the trained model sits, relative to the package root. */
export const DEFAULT_MODEL_FILE = "models/selfcorrect-world.gguf";
export const DEFAULT_MODEL_ENV = "SELFCORRECT_DEFAULT_MODEL";

export interface DefaultModel {
  /** Absolute path. */
  path: string;
  /** How to name it to a user: the path inside the package, or the override. */
  label: string;
  source: "package" | "env";
  /** Whether the file is there. */
  present: boolean;
}

/**
 * The package root: the nearest folder above this module with a package.json. The module runs from
 * dist/src/cac in an install and from src/cac under a TypeScript runner, so a fixed "../.." would be
 * right for only one of them.
 */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, "package.json"))) return dir;
    dir = dirname(dir);
  }
  return resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** The default model this process would use, or null when $SELFCORRECT_DEFAULT_MODEL is "none". */
export function resolveDefaultModel(env: NodeJS.ProcessEnv = process.env): DefaultModel | null {
  const override = env[DEFAULT_MODEL_ENV]?.trim();
  if (override === "none") return null;
  if (override) {
    const path = resolve(override);
    return { path, label: override, source: "env", present: isFile(path) };
  }
  const path = join(packageRoot(), DEFAULT_MODEL_FILE);
  return { path, label: DEFAULT_MODEL_FILE, source: "package", present: isFile(path) };
}

/** The stderr line a command prints when it falls back to the default model. */
export function defaultModelNotice(m: DefaultModel): string {
  return m.source === "package"
    ? `using the built-in model ${m.label} (trained here; see docs/world.md)`
    : `using the built-in model ${m.label} (from $${DEFAULT_MODEL_ENV})`;
}

/** Why there is no default to fall back on, for the "no model given" error. */
export function missingDefaultModel(m: DefaultModel | null): string {
  if (m === null) return `the built-in model is switched off ($${DEFAULT_MODEL_ENV}=none)`;
  if (m.source === "env") return `$${DEFAULT_MODEL_ENV} names ${m.label}, which is not a file`;
  return `the built-in model ${m.label} is not in this install (it ships once trained; see docs/world.md)`;
}
