/**
 * Eval runs on the cluster. The enqueuing process keeps the runner and the store (src/eval/run.ts
 * runEval, unchanged rules): only the running of an item moves out. Items the runner hands over are
 * gathered into shards of `shardSize`, each shard is one job, and a worker answers it with one outcome
 * per item (a record, or the error it hit). The runner stores each outcome when its shard completes,
 * so the SQLite primary key still guarantees no duplicate row, an item still counts once, and a resumed
 * run still sends only the items without a row.
 *
 * A worker killed mid-shard loses nothing: BullMQ gives the stalled shard to another worker, which runs
 * it again; only the finished shard's answer is stored. A shard's job id is derived from the run key
 * and its items (and the try), so re-enqueuing the same shard after the enqueuer itself restarted reuses
 * a shard that already finished.
 */
import { DelayedError, UnrecoverableError, type Job, type Queue } from "bullmq";
import { contentHash } from "../util/json.js";
import { sleep } from "../util/sleep.js";
import type { ChatModel } from "../cac/types.js";
import { prepareItems, runConfig, runKeyOf } from "../eval/run.js";
import { describeError } from "../eval/runner.js";
import { makeEvalSpec, type EvalSpecInput } from "../eval/spec.js";
import type { TaskContext } from "../eval/tasks.js";
import type { ItemRecord } from "../eval/types.js";
import { JOB_OPTIONS, type EvalShardData, type JobProgress } from "./queue.js";
import { codeVersion } from "./version.js";

export type ItemOutcome = { record: ItemRecord } | { error: string };
export interface ShardResult {
  worker: string;
  outcomes: Record<string, ItemOutcome>;
}

// ---- the enqueuer ----

export interface DispatchOptions {
  queue: Queue;
  runKey: string;
  specInput: EvalSpecInput;
  model: Record<string, unknown>;
  judge?: Record<string, unknown>;
  shardSize: number;
  pollMs?: number;
}

interface Waiting {
  id: string;
  resolve: (r: ItemRecord) => void;
  reject: (e: Error) => void;
}

/** A `processItem` for runEval that sends items to the cluster in shards. Call close() when the run ends. */
export function shardDispatcher(o: DispatchOptions): { processItem: (id: string, signal: AbortSignal) => Promise<ItemRecord>; close: () => void } {
  let buffer: Waiting[] = [];
  let flushTimer: NodeJS.Timeout | null = null;
  const tries = new Map<string, number>();
  const inFlight = new Map<string, Waiting[]>(); // job id -> its items
  let closed = false;
  let polling = false;

  const flush = () => {
    if (flushTimer) clearTimeout(flushTimer);
    flushTimer = null;
    const shard = buffer;
    buffer = [];
    if (!shard.length) return;
    const ids = shard.map((w) => w.id);
    const attempt = Math.max(...ids.map((id) => tries.get(id) ?? 0));
    const jobId = `eval-${o.runKey}-${contentHash({ ids, attempt })}`;
    const data: EvalShardData = {
      kind: "eval-shard",
      codeVersion: codeVersion(),
      configHash: o.runKey,
      runKey: o.runKey,
      specInput: o.specInput,
      model: o.model,
      judge: o.judge,
      ids,
    };
    inFlight.set(jobId, shard);
    o.queue.add("eval-shard", data, { ...JOB_OPTIONS, jobId }).catch((e: Error) => settle(jobId, e));
    if (!polling) void poll();
  };

  const settle = (jobId: string, result: ShardResult | Error) => {
    const shard = inFlight.get(jobId);
    if (!shard) return;
    inFlight.delete(jobId);
    for (const w of shard) {
      if (result instanceof Error) w.reject(result);
      else {
        const out = result.outcomes[w.id];
        if (!out) w.reject(new Error(`shard ${jobId} came back without item ${w.id}`));
        else if ("record" in out) w.resolve(out.record);
        else w.reject(new Error(out.error));
      }
    }
  };

  const poll = async () => {
    polling = true;
    try {
      while (!closed && inFlight.size) {
        for (const jobId of [...inFlight.keys()]) {
          // State first, then the job: a job read before it completed carries no return value yet,
          // even when a state read a moment later says completed.
          const state = await o.queue.getJobState(jobId).catch(() => "unknown");
          if (state !== "completed" && state !== "failed") continue;
          const job = await o.queue.getJob(jobId).catch(() => undefined);
          if (!job) continue;
          if (state === "failed") settle(jobId, new Error(`shard ${jobId} failed: ${job.failedReason}`));
          else if (job.returnvalue) settle(jobId, job.returnvalue as ShardResult);
        }
        await sleep(o.pollMs ?? 200);
      }
    } finally {
      polling = false;
    }
  };

  const processItem = (id: string, signal: AbortSignal): Promise<ItemRecord> =>
    new Promise<ItemRecord>((resolve, reject) => {
      tries.set(id, (tries.get(id) ?? -1) + 1);
      const w: Waiting = { id, resolve, reject };
      // The runner aborts on Ctrl-C or the item's deadline; the shard itself goes on in the cluster.
      signal.addEventListener("abort", () => reject(signal.reason instanceof Error ? signal.reason : new Error("aborted")), { once: true });
      buffer.push(w);
      if (buffer.length >= o.shardSize) flush();
      else flushTimer ??= setTimeout(flush, 50);
    });

  return {
    processItem,
    close: () => {
      closed = true;
      if (flushTimer) clearTimeout(flushTimer);
    },
  };
}

// ---- the worker ----

export type ModelBuilder = (flags: Record<string, unknown>) => Promise<ChatModel & { dispose?(): Promise<void> }>;

interface ShardContext {
  run: (id: string, signal: AbortSignal) => Promise<ItemRecord>;
  concurrency: number;
  itemTimeoutMs: number;
  dispose: () => Promise<void>;
}

/** Builds (once per run key) what a worker needs to run a run's items: spec, items, model, judge. */
export class EvalContexts {
  private readonly byKey = new Map<string, Promise<ShardContext>>();
  constructor(private readonly buildModel: ModelBuilder) {}

  get(d: EvalShardData): Promise<ShardContext> {
    let c = this.byKey.get(d.runKey);
    if (!c) {
      c = this.build(d);
      this.byKey.set(d.runKey, c);
      c.catch(() => this.byKey.delete(d.runKey));
    }
    return c;
  }

  private async build(d: EvalShardData): Promise<ShardContext> {
    const spec = makeEvalSpec(d.specInput as EvalSpecInput);
    const model = await this.buildModel(d.model);
    const judgeModel = d.judge ? await this.buildModel(d.judge) : undefined;
    const key = runKeyOf(runConfig(spec, { model, judgeModel }));
    if (key !== d.runKey) {
      // Another model id or settings here than at the enqueuer: its records would belong to another run.
      throw new UnrecoverableError(`the job's run key is ${d.runKey}, this worker computes ${key} from the same settings; refusing`);
    }
    const byId = new Map(prepareItems(spec).items.map((p) => [p.id, p]));
    const ctx: TaskContext = { model, defense: spec.defense, judges: spec.judges, judgeModel };
    return {
      run: (id, signal) => {
        const item = byId.get(id);
        if (!item) throw new UnrecoverableError(`item ${id} is not in this worker's copy of the data set`);
        return item.run(ctx, signal);
      },
      concurrency: spec.concurrency,
      itemTimeoutMs: spec.itemTimeoutMs,
      dispose: async () => {
        await model.dispose?.();
        await judgeModel?.dispose?.();
      },
    };
  }

  async dispose(): Promise<void> {
    for (const c of this.byKey.values()) await (await c.catch(() => null))?.dispose();
  }
}

/** Runs a shard's items, each once with its deadline, and answers one outcome per item. */
export async function runEvalShard(job: Job, contexts: EvalContexts, worker: string): Promise<ShardResult> {
  const d = job.data as EvalShardData;
  const ctx = await contexts.get(d);
  const outcomes: Record<string, ItemOutcome> = {};
  let next = 0;
  let done = 0;
  const report = (p: JobProgress) => job.updateProgress({ worker, total: d.ids.length, ...p }).catch(() => {});
  report({ done: 0 });
  const lane = async () => {
    while (next < d.ids.length) {
      const id = d.ids[next++]!;
      try {
        outcomes[id] = { record: await ctx.run(id, AbortSignal.timeout(ctx.itemTimeoutMs)) };
      } catch (e) {
        if (e instanceof UnrecoverableError || e instanceof DelayedError) throw e;
        outcomes[id] = { error: describeError(e) };
      }
      report({ done: ++done });
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(ctx.concurrency, d.ids.length)) }, lane));
  return { worker, outcomes };
}
