import { Worker } from "node:worker_threads";
import type { ResolvedAdam, ResolvedConfig } from "./config.js";
import type { Executor } from "./executor.js";
import type { HeapPlan } from "./layout.js";
import type { KernelSource } from "./backend.js";
import { CTRL_INTS, type WorkerCommand, type WorkerInit, type WorkerReply } from "./protocol.js";

/** The parent's Node flags minus those that only make sense for an entry script (`-e`, `--input-type`). */
function workerExecArgv(): string[] {
  const out: string[] = [];
  const argv = process.execArgv;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "-e" || a === "--eval" || a === "-p" || a === "--print") {
      i++;
      continue;
    }
    if (a.startsWith("--input-type") || a.startsWith("--eval=") || a.startsWith("--print=")) continue;
    out.push(a);
  }
  return out;
}

/**
 * Data-parallel executor: `threads` workers share one heap (parameters, Adam state, I/O,
 * activations) and split each batch's micro-shards among them (worker.ts). Commands go out as messages; every worker answers "done" or "error". Idle
 * workers are unref'd, so a model that is never disposed does not keep the process alive.
 */
export class PoolExecutor implements Executor {
  private pending: { left: number; resolve: () => void; reject: (e: Error) => void } | null = null;
  private failure: Error | null = null;
  private disposed = false;

  private constructor(
    readonly plan: HeapPlan,
    readonly threads: number,
    private readonly heapView: Float32Array,
    private readonly workers: Worker[],
  ) {
    for (const wk of workers) {
      wk.on("message", (m: WorkerReply) => this.onReply(m));
      wk.on("error", (e: Error) => this.fail(e));
      wk.on("exit", (code) => {
        if (!this.disposed) this.fail(new Error(`engine worker exited unexpectedly (code ${code})`));
      });
      wk.unref();
    }
  }

  static async create(
    c: ResolvedConfig, plan: HeapPlan, planOpts: WorkerInit["planOpts"], source: KernelSource, heapView: Float32Array, threads: number,
  ): Promise<PoolExecutor> {
    const ctrl = new SharedArrayBuffer(CTRL_INTS * 4);
    const workers: Worker[] = [];
    const ready: Promise<void>[] = [];
    for (let i = 0; i < threads; i++) {
      const init: WorkerInit = { index: i, workers: threads, config: c, planOpts, source, ctrl };
      const wk = new Worker(new URL("./worker.js", import.meta.url), { workerData: init, execArgv: workerExecArgv() });
      workers.push(wk);
      ready.push(
        new Promise<void>((resolve, reject) => {
          const onMsg = (m: WorkerReply) => {
            if (m.type === "ready") {
              cleanup();
              resolve();
            } else if (m.type === "error") {
              cleanup();
              reject(new Error(m.message));
            }
          };
          const onErr = (e: Error) => {
            cleanup();
            reject(e);
          };
          const onExit = (code: number) => {
            cleanup();
            reject(new Error(`engine worker exited during start-up (code ${code})`));
          };
          const cleanup = () => {
            wk.off("message", onMsg);
            wk.off("error", onErr);
            wk.off("exit", onExit);
          };
          wk.on("message", onMsg);
          wk.on("error", onErr);
          wk.on("exit", onExit);
        }),
      );
    }
    try {
      await Promise.all(ready);
    } catch (e) {
      await Promise.all(workers.map((wk) => wk.terminate()));
      throw e;
    }
    return new PoolExecutor(plan, threads, heapView, workers);
  }

  heap(): Float32Array {
    return this.heapView;
  }

  forward(B: number, T: number): Promise<void> {
    return this.run({ cmd: "forward", B, T });
  }

  backward(B: number, T: number): Promise<void> {
    return this.run({ cmd: "backward", B, T });
  }

  adam(o: ResolvedAdam, t: number): Promise<void> {
    return this.run({ cmd: "adam", lr: o.lr, beta1: o.beta1, beta2: o.beta2, eps: o.eps, t });
  }

  /** Test hook: makes every worker throw, to check that errors reject instead of hanging. */
  injectFailure(): Promise<void> {
    return this.run({ cmd: "fail" });
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    this.pending?.reject(new Error("engine disposed during a command"));
    this.pending = null;
    await Promise.all(this.workers.map((wk) => wk.terminate()));
  }

  private run(m: WorkerCommand): Promise<void> {
    if (this.failure) return Promise.reject(new Error(`the engine failed earlier and cannot continue: ${this.failure.message}`));
    if (this.disposed) return Promise.reject(new Error("the model was disposed"));
    if (this.pending) return Promise.reject(new Error("another engine command is still running (await each call)"));
    return new Promise<void>((resolve, reject) => {
      this.pending = { left: this.workers.length, resolve, reject };
      for (const wk of this.workers) wk.ref();
      for (const wk of this.workers) wk.postMessage(m);
    });
  }

  private onReply(m: WorkerReply): void {
    if (m.type === "error") {
      const e = new Error(m.message);
      if (m.stack) e.stack = m.stack;
      this.fail(e);
      return;
    }
    if (m.type !== "done" || !this.pending) return;
    if (--this.pending.left === 0) {
      const p = this.pending;
      this.pending = null;
      for (const wk of this.workers) wk.unref();
      p.resolve();
    }
  }

  private fail(e: Error): void {
    if (this.disposed) return;
    if (!this.failure) this.failure = e;
    const p = this.pending;
    this.pending = null;
    // A failed worker may leave the others waiting at the barrier: stop them all.
    this.disposed = true;
    for (const wk of this.workers) void wk.terminate();
    p?.reject(e);
  }
}
