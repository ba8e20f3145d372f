// `lab experiment --redis` against a real redis-server (appendonly) and real worker processes: the curves
// and the trained weights are byte-identical to the single-process run of the same command (same --threads),
// through Ctrl-C and re-attach, a worker killed with -9 mid-training, and a Redis restart mid-sweep.
// A smaller spec than the full quick preset (--steps 12) goes through the same code path; the full-size
// acceptance is measured by hand (docs/cluster.md).
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCliChild, startCli } from "./support/eval-cli.js";
import { testRedis } from "./support/redis.js";
import { completions, jobs, startWorkerProc, type WorkerProc } from "./support/cluster.js";
import { waitFor } from "./support/wait.js";

const STEPS = 12;
// Panel f trains two models (with and without the FFN), so two workers both get one.
const lab = (out: string, ...extra: string[]) => [
  "lab", "experiment", "f", "--preset", "quick", "--steps", String(STEPS), "--threads", "2", "--checkpoint-every", "3", "--output", out, "--json", ...extra,
];
const WORKER = ["--lock-ms", "5000"];
// Slow enough per step that "mid-training" lasts seconds on any machine (12 steps: about 4 s).
const SLOW = { SELFCORRECT_TEST_STEP_DELAY_MS: "300" };

const curves = (out: string) => JSON.parse(readFileSync(join(out, "results.json"), "utf8")).panels.f.curves;
const weights = (out: string) =>
  Object.fromEntries(readdirSync(join(out, "runs")).map((id) => [id, readFileSync(join(out, "runs", id, "model.safetensors"))]));

test("lab experiment --redis equals the single-process run", { timeout: 240_000 }, async (t) => {
  const redis = await testRedis(t, { own: true, appendonly: true });
  if (!redis) return;
  const dir = mkdtempSync(join(tmpdir(), "cluster-lab-"));
  const workers: WorkerProc[] = [];
  const stopWorkers = async () => {
    for (const w of workers.splice(0)) await w.kill();
  };
  // Each part stops its workers however it ends, so a failure cannot leave a worker running into the next.
  const isolated = (body: () => Promise<void>) => async () => {
    try {
      await body();
    } finally {
      await stopWorkers();
    }
  };
  try {
    const reference = await runCliChild(lab(join(dir, "ref")), 120_000);
    assert.equal(reference.code, 0, reference.stderr);
    const refCurves = curves(join(dir, "ref"));
    const refWeights = weights(join(dir, "ref"));
    assert.equal(Object.keys(refWeights).length, 2);

    await t.test("Ctrl-C detaches, the jobs stay; re-attached with two workers: byte-identical curves", isolated(async () => {
      const out = join(dir, "a");
      const first = startCli(lab(out, "--redis", redis.url));
      let err = "";
      first.child.stderr!.on("data", (d) => (err += d));
      await waitFor(() => /job\(s\) queued/.test(err), 30_000, { what: "the jobs to be enqueued", everyMs: 200 });
      first.child.kill("SIGINT");
      const r1 = await first.done;
      assert.equal(r1.code, 130, r1.stderr);
      assert.match(r1.stderr, /detached: the 2 job\(s\) keep running on the cluster; run the same command again to re-attach/);
      const queued = await jobs(redis.url);
      assert.deepEqual(queued.map((j) => j.state).sort(), ["waiting", "waiting"]);

      workers.push(startWorkerProc(redis.url, WORKER), startWorkerProc(redis.url, WORKER));
      const r2 = await runCliChild(lab(out, "--redis", redis.url), 120_000);
      assert.equal(r2.code, 0, r2.stderr);
      assert.match(r2.stderr, /lab-L2-C48-H3-\S+: (active|completed) .*step \d+\/12.*worker \S+:\d+/, "progress names the step and the worker");
      assert.deepEqual(curves(out), refCurves);
      assert.deepEqual(weights(out), refWeights);
      const done = completions(workers);
      assert.deepEqual([...done.values()], [1, 1], `each job completed once: ${JSON.stringify([...done])}`);
      // Enqueueing again adds nothing: both models are trained.
      const r3 = await runCliChild(lab(out, "--redis", redis.url, "--detach"), 30_000);
      assert.equal(r3.code, 0, r3.stderr);
      assert.match(r3.stderr, /0 job\(s\) queued or running \(none\), 2 already trained/);
    }));

    await t.test("kill -9 a worker mid-training: another resumes from its last checkpoint, same weights", isolated(async () => {
      await redis.flush();
      const out = join(dir, "b");
      const a = startWorkerProc(redis.url, WORKER, SLOW);
      workers.push(a);
      const enq = await runCliChild(lab(out, "--redis", redis.url, "--detach"), 30_000);
      assert.equal(enq.code, 0, enq.stderr);
      // Past the first uploaded checkpoint (every 3 steps) and before the end.
      await waitFor(async () => (await jobs(redis.url)).some((j) => j.state === "active" && (j.progress.step ?? 0) >= 4), 60_000, { what: "worker A to be mid-training", everyMs: 200 });
      await a.kill("SIGKILL");
      const b = startWorkerProc(redis.url, WORKER, SLOW);
      workers.push(b);
      const r = await runCliChild(lab(out, "--redis", redis.url), 120_000);
      assert.equal(r.code, 0, r.stderr);
      const resumed = /resuming from the checkpoint at step (\d+)/.exec(b.log());
      assert.ok(resumed && Number(resumed[1]) >= 3, `worker B resumed from a checkpoint:\n${b.log()}`);
      assert.deepEqual(weights(out), refWeights);
      assert.deepEqual(curves(out), refCurves);
    }));

    await t.test("Redis restarts mid-sweep: workers reconnect, no job lost or completed twice", isolated(async () => {
      await redis.flush();
      const out = join(dir, "c");
      workers.push(startWorkerProc(redis.url, WORKER, SLOW), startWorkerProc(redis.url, WORKER, SLOW));
      const enq = await runCliChild(lab(out, "--redis", redis.url, "--detach"), 30_000);
      assert.equal(enq.code, 0, enq.stderr);
      await waitFor(async () => (await jobs(redis.url)).some((j) => j.state === "active" && (j.progress.step ?? 0) >= 2), 60_000, { what: "a job mid-training", everyMs: 200 });
      await redis.restart();
      const r = await runCliChild(lab(out, "--redis", redis.url), 120_000);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(curves(out), refCurves);
      assert.deepEqual(weights(out), refWeights);
      const after = await jobs(redis.url);
      assert.deepEqual(after.map((j) => j.state), ["completed", "completed"]);
      const done = completions(workers);
      assert.equal(done.size, 2);
      for (const [id, n] of done) assert.equal(n, 1, `${id} completed ${n} times`);
    }));
  } finally {
    await stopWorkers();
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
