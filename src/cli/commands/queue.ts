/** `selfcorrect queue status --redis URL`: the cluster's jobs with their state, progress, ETA and worker. */
import type { Command } from "commander";
import { z } from "zod";
import { openCluster } from "../../cluster/connect.js";
import { queueStatus } from "../../cluster/status.js";
import { flag, parseFlags } from "../flags.js";

const statusFlags = z.object({
  redis: flag.text("--redis"),
  json: flag.bool(),
});

export function registerQueueCommands(program: Command): void {
  const queue = program.command("queue").description("inspect the jobs of a selfcorrect cluster (see `selfcorrect worker`)");
  queue
    .command("status")
    .description("every job: state, progress (step, loss, items), ETA, worker, and why a job failed or was refused")
    .requiredOption("--redis <url>", "the cluster's Redis, redis://[:password@]host:port[/db]")
    .option("--json", "print {counts, jobs} as one JSON line")
    .action(async (raw: object) => {
      const f = parseFlags(statusFlags, raw);
      const cluster = await openCluster(f.redis);
      try {
        const s = await queueStatus(cluster.queue);
        if (f.json) process.stdout.write(JSON.stringify(s) + "\n");
        else {
          process.stdout.write(`${Object.entries(s.counts).map(([k, v]) => `${k} ${v}`).join(", ")}\n`);
          for (const j of s.jobs) process.stdout.write(`${j.line}\n${j.logs.map((l) => `    log: ${l}\n`).join("")}`);
        }
      } finally {
        await cluster.close();
      }
    });
}
