/** The built CLI (dist/src/cli/main.js) as a child process: exit code, stdout and stderr, bounded in time. */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";

export const CLI_MAIN = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));

export interface CliRun {
  /** null when it was killed (the time limit). */
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], env: Record<string, string | undefined> = {}, timeoutMs = 60_000): Promise<CliRun> {
  return new Promise((resolve) => {
    const opts = { env: { ...process.env, ...env }, timeout: timeoutMs, killSignal: "SIGKILL" as const, maxBuffer: 64 << 20 };
    execFile(process.execPath, [CLI_MAIN, ...args], opts, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === "number" ? err.code : null;
      resolve({ code, stdout, stderr });
    });
  });
}
