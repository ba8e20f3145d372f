/** Runs the real `selfcorrect` CLI (dist/src/cli/main.js) as a child process, for the eval tests. */
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

export const CLI = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** The last stdout line parsed as JSON, if it is JSON. */
  json: any;
}

export function startCli(args: string[], env: NodeJS.ProcessEnv = {}, cwd?: string): { child: ChildProcess; done: Promise<CliResult> } {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, cwd, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d) => (stdout += d));
  child.stderr!.on("data", (d) => (stderr += d));
  const done = new Promise<CliResult>((resolve) => {
    child.on("close", (code, signal) => {
      const last = stdout.trim().split("\n").pop() ?? "";
      let json: any;
      try {
        json = JSON.parse(last);
      } catch {
        /* not JSON */
      }
      resolve({ code, signal, stdout, stderr, json });
    });
  });
  return { child, done };
}

/** Runs the CLI to the end; killed with SIGKILL (code null) past timeoutMs. `env` adds to this process's. */
export async function runCliChild(args: string[], timeoutMs = 60_000, env: NodeJS.ProcessEnv = {}, cwd?: string): Promise<CliResult> {
  const { child, done } = startCli(args, env, cwd);
  const t = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  try {
    return await done;
  } finally {
    clearTimeout(t);
  }
}
