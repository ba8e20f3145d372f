import { mkdirSync, renameSync, writeFileSync, openSync, fsyncSync, closeSync, accessSync, constants, rmSync, readFileSync, writeSync, fstatSync, readSync } from "node:fs";
import { dirname, join, basename } from "node:path";
import { createHash, randomBytes } from "node:crypto";
import { UserError } from "./errors.js";

/**
 * Writes a file so that readers see either the old content or the new, never a half-written file:
 * write to a temporary sibling, fsync, then rename over the target.
 */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
  try {
    const fd = openSync(tmp, "w");
    try {
      writeFileSync(fd, data);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

export function writeJsonAtomic(path: string, value: unknown): void {
  writeFileAtomic(path, JSON.stringify(value, null, 2) + "\n");
}

/** Fails early, before any long work, if `dir` cannot be created or written. */
export function ensureWritableDir(dir: string, flag = "--output"): void {
  try {
    mkdirSync(dir, { recursive: true });
    accessSync(dir, constants.W_OK);
  } catch (e) {
    throw new UserError(`${flag} ${dir}: directory is not writable (${(e as Error).message}); choose another directory`);
  }
}

/**
 * One writer per directory: creates `dir/lockName` holding this process's pid and returns its release.
 * Another live process holding it is a UserError naming it; a lock left by a process that no longer
 * exists (killed with -9) is taken over. `what` names the kind of run in the message ("eval", "lab").
 */
export function acquireDirLock(dir: string, lockName: string, what: string, flag = "--output"): () => void {
  const file = join(dir, lockName);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, "wx");
      writeSync(fd, String(process.pid));
      closeSync(fd);
      let released = false;
      return () => {
        if (released) return;
        released = true;
        try {
          if (readFileSync(file, "utf8").trim() === String(process.pid)) rmSync(file, { force: true });
        } catch {
          /* already gone */
        }
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      const pid = liveLockHolder(file);
      if (pid !== null && pid !== process.pid) {
        throw new UserError(`${flag} ${dir}: another ${what} (pid ${pid}) is writing there; wait for it or choose another directory`);
      }
      rmSync(file, { force: true });
    }
  }
  throw new UserError(`${flag} ${dir}: cannot take the lock ${file}`);
}

/** The pid in a lock file written by acquireDirLock when that process is still alive, else null. */
export function liveLockHolder(file: string): number | null {
  let pid: number;
  try {
    pid = Number(readFileSync(file, "utf8").trim());
  } catch {
    return null;
  }
  return Number.isInteger(pid) && pid > 0 && isAlive(pid) ? pid : null;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Bytes read from each end of a file by fileFingerprint. */
const FINGERPRINT_SPAN = 1 << 20;

/**
 * A content fingerprint of a (possibly multi-gigabyte) file that costs two reads: its size and the
 * sha256 of its first and last MiB. Model files differ in their tensor data, which fills the tail, so a
 * retrained model at the same path gets another fingerprint; a copy keeps it.
 */
export function fileFingerprint(path: string): string {
  const fd = openSync(path, "r");
  try {
    const size = fstatSync(fd).size;
    const hash = createHash("sha256").update(`${size}:`);
    const buf = Buffer.alloc(Math.min(FINGERPRINT_SPAN, size));
    for (const at of size > FINGERPRINT_SPAN ? [0, size - FINGERPRINT_SPAN] : [0]) {
      let got = 0;
      while (got < buf.length) {
        const n = readSync(fd, buf, got, buf.length - got, at + got);
        if (n === 0) break;
        got += n;
      }
      hash.update(buf.subarray(0, got));
    }
    return `sha256-ends:${hash.digest("hex").slice(0, 32)}`;
  } finally {
    closeSync(fd);
  }
}
