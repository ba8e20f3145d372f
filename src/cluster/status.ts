/** A snapshot of the cluster's queue for `selfcorrect queue status`. */
import type { Queue } from "bullmq";
import { describeJob, progressOf, type JobProgress } from "./queue.js";

export interface JobStatus {
  id: string;
  name: string;
  state: string;
  attemptsMade: number;
  progress: JobProgress;
  failedReason?: string;
  /** The job's log lines (a refusing worker writes why). */
  logs: string[];
  line: string;
}

const STATES = ["active", "waiting", "delayed", "prioritized", "waiting-children", "failed", "completed"] as const;

export async function queueStatus(queue: Queue, limit = 1000): Promise<{ counts: Record<string, number>; jobs: JobStatus[] }> {
  const counts = await queue.getJobCounts(...STATES);
  const jobs: JobStatus[] = [];
  for (const job of await queue.getJobs([...STATES], 0, limit - 1)) {
    if (!job?.id) continue;
    const state = await job.getState();
    const { logs } = await queue.getJobLogs(job.id);
    jobs.push({
      id: job.id,
      name: job.name,
      state,
      attemptsMade: job.attemptsMade,
      progress: progressOf(job),
      failedReason: job.failedReason || undefined,
      logs,
      line: describeJob(job, state),
    });
  }
  jobs.sort((a, b) => STATES.indexOf(a.state as (typeof STATES)[number]) - STATES.indexOf(b.state as (typeof STATES)[number]) || a.id.localeCompare(b.id));
  return { counts, jobs };
}
