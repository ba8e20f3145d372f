/**
 * A training worker: runs its share of the batch's micro-shards (layout.ts, microShards) in the
 * shared heap, with its own gradient and kernel scratch, on commands from the pool
 * (src/engine/model/pool.ts). Each micro-shard's parameter gradient has its own buffer; workers meet
 * at an Atomics barrier after backward, and each then sums all micro-shards' gradients over its own
 * fixed parameter slice, in micro-shard order, so results depend neither on timing nor on the
 * number of workers.
 */
import { parentPort, workerData } from "node:worker_threads";
import { microRows, microShards, planHeap, paramSlice, workerMicroShards } from "./layout.js";
import { makeKernels } from "./backend.js";
import { CTRL_COUNT, CTRL_FAILED, CTRL_GEN, type WorkerCommand, type WorkerInit, type WorkerReply } from "./protocol.js";
import { runForwardRows, runMicroBackward } from "./executor.js";

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
/** Floats of the gradient reduced per pass over the micro-shards (16 KiB: fits L1 with the sources' lines). */
const REDUCE_CHUNK = 4096;

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
      const [lo, hi] = workerMicroShards(m.B, W, w);
      if (hi > lo) runForwardRows(k, c, plan, microRows(m.B, lo)[0], microRows(m.B, hi - 1)[1], m.T);
      return;
    }
    case "backward": {
      const [lo, hi] = workerMicroShards(m.B, W, w);
      for (let s = lo; s < hi; s++) runMicroBackward(k, c, plan, w, plan.microGrads[s]!, m.B, s, m.T);
      const M = microShards(m.B);
      if (M === 1) return;
      barrier();
      // Micro-shard 0's buffer is the reduced gradient: add the others into it over my slice, in
      // micro-shard order, a chunk at a time so the destination stays in cache.
      for (let at = pLo; at < pHi; at += REDUCE_CHUNK) {
        const n = Math.min(REDUCE_CHUNK, pHi - at);
        for (let s = 1; s < M; s++) k.accumulate(plan.gradsPtr + at, plan.microGrads[s]! + at, n);
      }
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
