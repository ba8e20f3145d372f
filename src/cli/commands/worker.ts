/**
 * `selfcorrect worker --redis URL`: take the cluster's jobs (lab training, eval shards) until stopped.
 * Thin layer: flags here, the worker in src/cluster/worker.ts.
 */
import type { Command } from "commander";
import { z } from "zod";
import { ExitCode, UserError } from "../../util/errors.js";
import { openCluster, redactUrl } from "../../cluster/connect.js";
import { startWorker } from "../../cluster/worker.js";
import { flag, parseFlags } from "../flags.js";
import { modelFromOptions, type ModelFlags } from "../options.js";

export const redisFlags = {
  redis: flag.text("--redis"),
  artifacts: flag.text("--artifacts").optional(),
};

const workerFlags = z.object({
  ...redisFlags,
  threads: flag.int("--threads", 1, 256).optional(),
  concurrency: flag.int("--concurrency", 1, 64).default(1),
  lockMs: flag.int("--lock-ms", 1000, 3_600_000).default(30_000),
});

export function registerWorkerCommand(program: Command): void {
  program
    .command("worker")
    .description("run jobs of a selfcorrect cluster (lab training, eval shards) from Redis until stopped (Ctrl-C)")
    .requiredOption("--redis <url>", "the cluster's Redis, redis://[:password@]host:port[/db]")
    .option("--artifacts <dir>", "shared directory for checkpoints instead of Redis (every worker and the enqueuer must see it)")
    .option("--threads <n>", "engine threads for training jobs that do not pin them (lab experiment pins its --threads)")
    .option("--concurrency <k>", "jobs at once", "1")
    .option(
      "--lock-ms <ms>",
      "job lock: a worker silent this long (killed) loses its job to another worker; keep it above the longest training step (at --threads 1 the engine computes on the event loop)",
      "30000",
    )
    .addHelpText(
      "after",
      `
Start as many as you like, on any machine that reaches the Redis; each takes jobs as they come.
  selfcorrect worker --redis redis://10.0.0.5:6379 --threads 4
A job planned by another build of selfcorrect is refused (the job says why) and the worker stops (exit 2).
Ctrl-C stops at once; a training job in progress resumes on another worker from its last checkpoint.`,
    )
    .action(async (raw: object) => {
      const f = parseFlags(workerFlags, raw);
      const cluster = await openCluster(f.redis, f.artifacts);
      const log = (line: string) => process.stderr.write(`${line}\n`);
      let refusal: string | null = null;
      let stop!: () => void;
      const stopped = new Promise<void>((r) => (stop = r));
      const w = startWorker({
        client: cluster.client,
        artifacts: cluster.artifacts,
        concurrency: f.concurrency,
        threads: f.threads,
        lockMs: f.lockMs,
        buildModel: (flags) => modelFromOptions(flags as ModelFlags),
        log,
        onRefused: (reason) => {
          refusal = reason;
          stop();
        },
      });
      log(`connected to ${redactUrl(f.redis)}; waiting for jobs (Ctrl-C to stop)`);
      let interrupted = false;
      const onSignal = () => {
        interrupted = true;
        stop();
      };
      process.once("SIGINT", onSignal);
      process.once("SIGTERM", onSignal);
      await stopped;
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
      await w.close(true);
      await cluster.close();
      if (refusal) throw new UserError(refusal);
      if (interrupted) process.exitCode = ExitCode.interrupted;
    });
}
