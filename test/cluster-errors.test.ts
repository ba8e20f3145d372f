// Bad input on a cluster gives a clear error within 10 s and never hangs: an unreachable Redis URL (or a
// peer that never answers), a wrong or missing password (a real redis-server with requirepass), a worker of
// another code version (it refuses the job, the job says why, and the worker stops), and a job with a bad
// config (fails once, not retried).
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openCluster } from "../src/cluster/connect.js";
import { JOB_OPTIONS, type TrainJobData } from "../src/cluster/queue.js";
import { codeVersion } from "../src/cluster/version.js";
import { QUICK_BASE } from "../src/lab/experiments.js";
import { runCliChild } from "./support/eval-cli.js";
import { freePort, testRedis } from "./support/redis.js";
import { jobs, startWorkerProc } from "./support/cluster.js";
import { waitFor } from "./support/wait.js";

/**
 * Runs the CLI; `seconds` is its wall time less that of `selfcorrect --version` run just before, so that
 * starting Node and loading the CLI (seconds on a loaded machine) does not count against the 10 s.
 */
async function timed(args: string[], env: NodeJS.ProcessEnv = {}) {
  const t0 = Date.now();
  await runCliChild(["--version"], 60_000);
  const t1 = Date.now();
  const r = await runCliChild(args, 60_000, env);
  return { ...r, seconds: (Date.now() - t1 - (t1 - t0)) / 1000 };
}

test("an unreachable Redis URL: exit 2 with the reason, within 10 s", async () => {
  const port = await freePort();
  for (const args of [["queue", "status"], ["worker"]]) {
    const r = await timed([...args, "--redis", `redis://127.0.0.1:${port}`]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`cannot reach Redis at 127\\.0\\.0\\.1:${port}: connection refused`));
    assert.ok(r.seconds < 10, `${r.seconds} s`);
  }
  // A peer that accepts the connection and never answers (a wrong service on the port): the handshake is bounded too.
  const sockets: Socket[] = [];
  const silent = createServer((s) => void sockets.push(s));
  await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
  const silentPort = (silent.address() as { port: number }).port;
  try {
    const r = await timed(["queue", "status", "--redis", `redis://127.0.0.1:${silentPort}`]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`cannot reach Redis at 127\\.0\\.0\\.1:${silentPort}: no answer within 5000 ms`));
    assert.ok(r.seconds < 10, `${r.seconds} s`);
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise((r) => silent.close(r));
  }
  const bad = await timed(["queue", "status", "--redis", "http://127.0.0.1:1"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /only redis:\/\/ URLs are supported/);
});

test("a wrong or missing password: exit 2 naming the problem, within 10 s", async (t) => {
  const redis = await testRedis(t, { own: true, password: "s3cret" });
  if (!redis) return;
  try {
    const wrong = await timed(["queue", "status", "--redis", `redis://:nope@127.0.0.1:${redis.port}`]);
    assert.equal(wrong.code, 2, wrong.stderr);
    assert.match(wrong.stderr, /refused the password \(WRONGPASS/);
    assert.ok(wrong.seconds < 10, `${wrong.seconds} s`);
    const none = await timed(["worker", "--redis", `redis://127.0.0.1:${redis.port}`]);
    assert.equal(none.code, 2, none.stderr);
    assert.match(none.stderr, /needs a password \(NOAUTH/);
    assert.ok(none.seconds < 10, `${none.seconds} s`);
    const right = await timed(["queue", "status", "--redis", redis.url, "--json"]);
    assert.equal(right.code, 0, right.stderr);
    assert.deepEqual(right.json.jobs, []);
  } finally {
    await redis.stop();
  }
});

test("a worker of another version refuses the job visibly and stops; a bad config fails once", async (t) => {
  const redis = await testRedis(t, { db: 1 });
  if (!redis) return;
  const dir = mkdtempSync(join(tmpdir(), "cluster-errors-"));
  try {
    const enq = await runCliChild(["lab", "experiment", "a", "--steps", "3", "--threads", "1", "--output", dir, "--redis", redis.url, "--detach"], 30_000);
    assert.equal(enq.code, 0, enq.stderr);
    const r = await timed(["worker", "--redis", redis.url], { SELFCORRECT_CODE_VERSION: "0.0.0+another" });
    assert.ok(r.seconds < 10, `the refusing worker stops within 10 s (${r.seconds} s)`);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /runs selfcorrect 0\.0\.0\+another but the job was planned by \S+; start workers built from the same code/);
    const [job] = await jobs(redis.url);
    assert.ok(job && job.state !== "completed" && job.state !== "failed", `the job waits for a right worker: ${job?.state}`);
    assert.match(job.logs.join("\n"), /planned by/);
    assert.match(job.progress.refused ?? "", /0\.0\.0\+another/);
    assert.equal(job.progress.step, undefined, "no numbers were produced");

    await redis.flush();
    const c = await openCluster(redis.url);
    const spec = { ...QUICK_BASE, model: { ...QUICK_BASE.model, nHead: 5 } };
    const data: TrainJobData = { kind: "lab-train", codeVersion: codeVersion(), configHash: "bad", runId: "bad", spec, checkpointEvery: 10 };
    await c.queue.add("lab-train", data, { ...JOB_OPTIONS, jobId: "lab-bad" });
    await c.close();
    const w = startWorkerProc(redis.url, ["--lock-ms", "5000"]);
    try {
      const failed = await waitFor(async () => (await jobs(redis.url)).find((j) => j.state === "failed"), 20_000, { what: "the bad job to fail", everyMs: 200 });
      assert.match(failed.failedReason ?? "", /bad config: nHead = 5 does not divide nEmbd = 48/);
      assert.equal(failed.attemptsMade, 1);
      // The retry backoff (2 s) has passed: it was not tried again.
      await new Promise((res) => setTimeout(res, 3000));
      const later = (await jobs(redis.url)).find((j) => j.id === "lab-bad")!;
      assert.equal(later.state, "failed");
      assert.equal(later.attemptsMade, 1);
    } finally {
      await w.kill();
    }
  } finally {
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
