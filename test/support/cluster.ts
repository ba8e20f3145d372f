/** Cluster test helpers: worker child processes with live logs, waiting on a condition, the queue's jobs. */
import type { ChildProcess } from "node:child_process";
import { openCluster } from "../../src/cluster/connect.js";
import { queueStatus, type JobStatus } from "../../src/cluster/status.js";
import { startCli, type CliResult } from "./eval-cli.js";

export interface WorkerProc {
  child: ChildProcess;
  /** stderr so far. */
  log: () => string;
  done: Promise<CliResult>;
  kill: (signal?: NodeJS.Signals) => Promise<void>;
}

export function startWorkerProc(url: string, extra: string[] = [], env: NodeJS.ProcessEnv = {}): WorkerProc {
  const { child, done } = startCli(["worker", "--redis", url, ...extra], env);
  let err = "";
  child.stderr!.on("data", (d) => (err += d));
  return {
    child,
    log: () => err,
    done,
    kill: async (signal = "SIGKILL") => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await done;
    },
  };
}

export async function jobs(url: string): Promise<JobStatus[]> {
  const c = await openCluster(url);
  try {
    return (await queueStatus(c.queue)).jobs;
  } finally {
    await c.close();
  }
}

/** How often each job id appears as "<id>: completed by" in the workers' logs. */
export function completions(workers: WorkerProc[]): Map<string, number> {
  const n = new Map<string, number>();
  for (const w of workers) for (const m of w.log().matchAll(/^(\S+): completed by /gm)) n.set(m[1]!, (n.get(m[1]!) ?? 0) + 1);
  return n;
}
