/**
 * A training worker: owns one batch shard (activations, gradient buffer, kernel scratch) in the
 * shared heap and runs commands from the pool (src/engine/model/pool.ts). Workers meet at an
 * Atomics barrier between backward and the gradient reduce; each then sums every worker's gradient
 * over its own fixed parameter slice, in worker order, so results do not depend on timing.
 */
import { parentPort, workerData } from "node:worker_threads";
import { planHeap, paramSlice, shardRows } from "./layout.js";
import { makeKernels } from "./backend.js";
import { CTRL_COUNT, CTRL_FAILED, CTRL_GEN, type WorkerCommand, type WorkerInit, type WorkerReply } from "./protocol.js";
import { runBackwardShard, runForwardShard } from "./executor.js";

const init = workerData as WorkerInit;
const port = parentPort!;
const c = init.config;
const W = init.workers;
const w = init.index;
const plan = planHeap(c, init.planOpts);
const me = plan.workers[w]!;
const k = makeKernels(init.source, me.kernelScratchPtr, me.kernelScratchFloats);
const ctrl = new Int32Array(init.ctrl);
const [pLo, pHi] = paramSlice(plan.params.count, W, w);

function barrier(): void {
  const gen = Atomics.load(ctrl, CTRL_GEN);
  if (Atomics.add(ctrl, CTRL_COUNT, 1) === W - 1) {
    Atomics.store(ctrl, CTRL_COUNT, 0);
    Atomics.add(ctrl, CTRL_GEN, 1);
    Atomics.notify(ctrl, CTRL_GEN);
    return;
  }
  while (Atomics.load(ctrl, CTRL_GEN) === gen) {
    if (Atomics.load(ctrl, CTRL_FAILED) !== 0) throw new Error("another worker failed");
    Atomics.wait(ctrl, CTRL_GEN, gen, 200);
  }
}

function run(m: WorkerCommand): void {
  switch (m.cmd) {
    case "forward": {
      const [lo, hi] = shardRows(m.B, W, w);
      runForwardShard(k, c, plan, w, lo, hi, m.T);
      return;
    }
    case "backward": {
      const [lo, hi] = shardRows(m.B, W, w);
      runBackwardShard(k, c, plan, w, lo, hi, m.T);
      if (W === 1) return;
      barrier();
      // Worker 0's buffer is the reduced gradient: add the others into it over my slice, in order.
      for (let o = 1; o < W; o++) k.accumulate(plan.gradsPtr + pLo, plan.workers[o]!.gradsPtr + pLo, pHi - pLo);
      return;
    }
    case "adam": {
      if (pHi > pLo) {
        k.adamUpdate(plan.paramsPtr + pLo, plan.gradsPtr + pLo, plan.mPtr + pLo, plan.vPtr + pLo, pHi - pLo, m.lr, m.beta1, m.beta2, m.eps, m.t);
      }
      return;
    }
    case "fail":
      throw new Error(`worker ${w}: failure requested (test hook)`);
  }
}

port.on("message", (m: WorkerCommand) => {
  try {
    run(m);
    port.postMessage({ type: "done" } satisfies WorkerReply);
  } catch (e) {
    Atomics.store(ctrl, CTRL_FAILED, 1);
    Atomics.notify(ctrl, CTRL_GEN);
    const err = e as Error;
    port.postMessage({ type: "error", message: `worker ${w}: ${err?.message ?? String(e)}`, stack: err?.stack } satisfies WorkerReply);
  }
});
port.postMessage({ type: "ready" } satisfies WorkerReply);
