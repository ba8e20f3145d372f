/**
 * Which directories the viewer serves: eval output directories (an eval.sqlite store) and lab run
 * directories (a lab results.json, or training checkpoints). Each is given a small numeric id that the
 * API uses, so no request ever carries a file-system path: the client names a served directory by id,
 * and the server alone maps it to a path.
 */
import { existsSync, readdirSync, realpathSync, statSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { UserError } from "../util/errors.js";
import { STORE_FILE } from "../eval/store.js";
import { LAB_LOCK_FILE, readResults } from "../lab/runner.js";

export const CHECKPOINT_FILE = "model.safetensors";

export interface ServedDir {
  id: number;
  /** Absolute, symlinks resolved: the root no served file may leave. */
  path: string;
  /** As shown to the user (relative to the working directory when inside it). */
  label: string;
  eval: boolean;
  lab: boolean;
}

/** A lab directory: experiment results, a lab run in progress, or a training run's checkpoint. */
function isLabDir(dir: string): boolean {
  if (readResults(dir) !== null || existsSync(join(dir, LAB_LOCK_FILE))) return true;
  if (existsSync(join(dir, `${CHECKPOINT_FILE}.json`)) || existsSync(join(dir, `${CHECKPOINT_FILE}.lock`))) return true;
  return trainingDirs(dir).length > 0;
}

/** The training-run folders of a lab experiment (runs/<id>/ with a checkpoint or a training lock). */
export function trainingDirs(dir: string): string[] {
  const runs = join(dir, "runs");
  if (!isDir(runs)) return [];
  return readdirSync(runs)
    .map((name) => join(runs, name))
    .filter((d) => isDir(d) && (existsSync(join(d, `${CHECKPOINT_FILE}.json`)) || existsSync(join(d, `${CHECKPOINT_FILE}.lock`))));
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

const SKIP = new Set(["node_modules", ".git", "dist"]);
/** Bounds the walk so pointing the viewer at a home directory stays quick. */
const MAX_DEPTH = 4;
const MAX_VISITS = 5000;

/** Served directories at or under `root`; a directory that qualifies is not searched further. */
function discover(root: string): string[] {
  const found: string[] = [];
  let visits = 0;
  const walk = (dir: string, depth: number) => {
    if (++visits > MAX_VISITS) return;
    if (existsSync(join(dir, STORE_FILE)) || isLabDir(dir)) {
      found.push(dir);
      return;
    }
    if (depth >= MAX_DEPTH) return;
    let names: string[];
    try {
      names = readdirSync(dir).sort();
    } catch {
      return;
    }
    for (const name of names) {
      if (SKIP.has(name) || name.startsWith(".")) continue;
      const sub = join(dir, name);
      if (isDir(sub)) walk(sub, depth + 1);
    }
  };
  walk(root, 0);
  return found;
}

/** Fails with a UserError naming the first given directory that does not exist. */
function checkRoots(given: readonly string[], cwd: string): string[] {
  const roots = given.length ? given.map((d) => resolve(cwd, d)) : [cwd];
  for (const [i, r] of roots.entries()) {
    if (!isDir(r)) throw new UserError(`${given[i]}: not a directory; give eval output directories (--output of \`selfcorrect eval\`) or lab run directories`);
  }
  return roots;
}

/**
 * The directories to serve: each given one (or what is under it), or, with none given, what is under
 * the working directory. Rescanned on refresh() (at most once a second), so a run started after the
 * viewer shows up; a directory keeps its id for the life of the server (new ones are appended).
 */
export class ServedDirs {
  private readonly dirs: ServedDir[] = [];
  private readonly roots: string[];
  private scannedAt = 0;

  constructor(
    given: readonly string[],
    private readonly cwd: string,
  ) {
    this.roots = checkRoots(given, cwd);
    this.refresh(true);
  }

  refresh(force = false): readonly ServedDir[] {
    if (!force && Date.now() - this.scannedAt < 1000) return this.dirs;
    this.scannedAt = Date.now();
    for (const found of this.roots.flatMap(discover)) {
      let path: string;
      try {
        path = realpathSync(found);
      } catch {
        continue;
      }
      const known = this.dirs.find((d) => d.path === path);
      if (known) {
        known.eval = existsSync(join(path, STORE_FILE));
        known.lab = isLabDir(path);
        continue;
      }
      const rel = relative(this.cwd, path);
      this.dirs.push({ id: this.dirs.length, path, label: rel === "" ? "." : rel.startsWith("..") ? path : rel, eval: existsSync(join(path, STORE_FILE)), lab: isLabDir(path) });
    }
    return this.dirs;
  }

  get(id: number): ServedDir | undefined {
    return this.dirs[id];
  }

  all(): readonly ServedDir[] {
    return this.dirs;
  }
}
