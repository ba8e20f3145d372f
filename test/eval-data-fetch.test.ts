// The dataset downloader against a loopback HTTP server (node:http on 127.0.0.1) that serves the
// committed samples (test/fixtures/data) under several behaviours: /ok (as is), /tamper (one byte
// changed), /missing (404), /cut (closes the connection mid-body), /flaky (503 once, then as is),
// /hang (stalls mid-body). The samples are not the pinned upstream files, so most tests fetch through
// the registry re-pinned to them (sampleRegistry); jailbreak-prompts is sampled whole and keeps its
// real pins. Under /full/ the server serves ../shared/data, for the tests that need every file.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import type { AddressInfo } from "node:net";
import { fetchDataset, verifyDataDir, sha256File, FetchError, type FetchOptions } from "../src/eval/datasets/download.js";
import { DATASETS, getDataset, type DatasetSpec } from "../src/eval/datasets/registry.js";
import { loadXsTest, loadBbq } from "../src/eval/datasets/index.js";
import { CLI } from "./support/eval-cli.js";
import { FULL_DATA, FULL_DATA_SKIP, SAMPLE_DATA, sampleRegistry, sampleSha256 } from "./support/eval-data.js";

const run = promisify(execFile);
const SAMPLES = sampleRegistry();
const sample = (name: string): DatasetSpec => getDataset(name, SAMPLES);

let server: Server;
let base = "";
const hits = new Map<string, number>();
const flakyDone = new Set<string>();

before(async () => {
  server = createServer((req, res) => {
    const url = decodeURIComponent(req.url ?? "/");
    const m = /^(\/full)?\/(ok|tamper|missing|cut|flaky|hang)\/(.+)$/.exec(url);
    hits.set(url, (hits.get(url) ?? 0) + 1);
    const root = m?.[1] ? FULL_DATA : SAMPLE_DATA;
    const file = m ? join(root, m[3]!) : "";
    if (!m || !file.startsWith(root + "/") || !existsSync(file) || m[2] === "missing") {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found");
      return;
    }
    let body = readFileSync(file);
    const mode = m[2]!;
    if (mode === "flaky" && !flakyDone.has(url)) {
      flakyDone.add(url);
      res.writeHead(503).end("try later");
      return;
    }
    if (mode === "tamper") {
      body = Buffer.from(body);
      body[body.length >> 1]! ^= 0x01;
    }
    res.writeHead(200, { "content-type": "application/octet-stream", "content-length": String(body.length) });
    if (mode === "cut" || mode === "hang") {
      res.write(body.subarray(0, body.length >> 1));
      if (mode === "cut") setTimeout(() => res.socket?.destroy(), 20);
      return; // hang: never ends; closed by closeAllConnections in after()
    }
    res.end(body);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

function tempCache(): string {
  return mkdtempSync(join(tmpdir(), "selfcorrect-cache-"));
}

function quiet(extra: Partial<FetchOptions> = {}): FetchOptions {
  return { progressMinBytes: Infinity, retries: 0, retryDelayMs: 10, ...extra };
}

/** Every file under dir, recursively (to look for leftover temporary files). */
function allFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => join(d.parentPath, d.name));
}

async function rejectsWith(p: Promise<unknown>, ...fragments: string[]): Promise<Error> {
  let caught: unknown;
  await p.then(
    () => assert.fail("expected a rejection"),
    (e: unknown) => (caught = e),
  );
  const e = caught as Error;
  for (const f of fragments) assert.ok(e.message.includes(f), `message should contain '${f}': ${e.message}`);
  return e;
}

test("fetch downloads into the ../shared/data layout, verifies, then serves later calls from the cache", async () => {
  const cache = tempCache();
  try {
    const r = await fetchDataset(sample("xstest"), quiet({ cacheDir: cache, baseUrl: `${base}/ok` }));
    assert.deepEqual(r.files.map((f) => f.status), ["downloaded", "downloaded"]);
    for (const f of sample("xstest").files) {
      assert.equal(await sha256File(join(cache, f.path)), f.sha256);
      assert.deepEqual(readFileSync(join(cache, f.path)), readFileSync(join(SAMPLE_DATA, f.path)));
    }
    assert.equal(loadXsTest(cache).length, loadXsTest(SAMPLE_DATA).length, "the cache works as --data-dir");
    const sub = await fetchDataset(sample("bbq-subset"), quiet({ cacheDir: cache, baseUrl: `${base}/ok/` }));
    assert.equal(sub.files.filter((f) => f.status === "downloaded").length, 11);
    assert.equal(loadBbq(cache, { subset: true }).items.length, loadBbq(SAMPLE_DATA, { subset: true }).items.length);

    const before = hits.get("/ok/xstest/xstest_prompts.csv");
    assert.equal(before, 1);
    const again = await fetchDataset(sample("xstest"), quiet({ cacheDir: cache, baseUrl: `${base}/ok` }));
    assert.deepEqual(again.files.map((f) => f.status), ["cached", "cached"]);
    assert.equal(hits.get("/ok/xstest/xstest_prompts.csv"), 1, "no request for a cached file with the right hash");

    // A corrupted cached copy is noticed and replaced.
    writeFileSync(join(cache, "xstest/xstest_prompts.csv"), "id,prompt\n");
    const healed = await fetchDataset(sample("xstest"), quiet({ cacheDir: cache, baseUrl: `${base}/ok` }));
    assert.deepEqual(healed.files.map((f) => f.status), ["downloaded", "cached"]);
    assert.equal(hits.get("/ok/xstest/xstest_prompts.csv"), 2);
    assert.ok(allFiles(cache).every((p) => !p.endsWith(".part")));
    assert.ok((await verifyDataDir(cache, ["xstest", "bbq-subset"], SAMPLES)).every((v) => v.status === "ok"));
    // Against the real pins the samples are mismatches, which verify reports as such.
    assert.ok((await verifyDataDir(cache, ["xstest"])).every((v) => v.status === "mismatch"));
  } finally {
    rmSync(cache, { recursive: true, force: true });
  }
});

test("checksum mismatch: error names the file, expected and actual hash; nothing is written", async () => {
  const cache = tempCache();
  try {
    const spec = getDataset("jailbreak-prompts").files[0]!;
    const e = await rejectsWith(
      fetchDataset("jailbreak-prompts", quiet({ cacheDir: cache, baseUrl: `${base}/tamper` })),
      spec.path,
      "SHA-256 mismatch",
      `expected ${spec.sha256}`,
      "the file was not saved",
    );
    assert.ok(e instanceof FetchError);
    assert.equal(sampleSha256(spec.path), spec.sha256, "jailbreak-prompts is sampled whole: the real pins hold");
    const tampered = Buffer.from(readFileSync(join(SAMPLE_DATA, spec.path)));
    tampered[tampered.length >> 1]! ^= 0x01;
    const { createHash } = await import("node:crypto");
    assert.ok(e.message.includes(`got ${createHash("sha256").update(tampered).digest("hex")}`));
    assert.deepEqual(allFiles(cache), [], "no file and no temporary file left");
  } finally {
    rmSync(cache, { recursive: true, force: true });
  }
});

test("404 fails without retrying; a connection closed mid-body is retried, then fails; no partial files", async () => {
  const cache = tempCache();
  try {
    await rejectsWith(fetchDataset("xstest", quiet({ cacheDir: cache, baseUrl: `${base}/missing`, retries: 2 })), "xstest/xstest_prompts.csv", "HTTP 404");
    assert.equal(hits.get("/missing/xstest/xstest_prompts.csv"), 1);
    const cut = await rejectsWith(
      fetchDataset("advbench", quiet({ cacheDir: cache, baseUrl: `${base}/cut`, retries: 1 })),
      "3 files of advbench failed",
      "advbench/harmful_behaviors.csv: download from",
    );
    assert.ok(/terminated|truncated|other side closed|socket/i.test(cut.message), cut.message);
    assert.equal(hits.get("/cut/advbench/harmful_behaviors.csv"), 2, "one retry");
    assert.deepEqual(allFiles(cache), []);
  } finally {
    rmSync(cache, { recursive: true, force: true });
  }
});

test("a 503 is retried; unpinned files are skipped; derived data needs --base-url; stall timeout and abort leave nothing", async () => {
  const cache = tempCache();
  try {
    const r = await fetchDataset(sample("xstest"), quiet({ cacheDir: cache, baseUrl: `${base}/flaky`, retries: 1 }));
    assert.deepEqual(r.files.map((f) => f.status), ["downloaded", "downloaded"]);
    assert.equal(hits.get("/flaky/xstest/xstest_prompts.csv"), 2);

    const bbq = await fetchDataset(sample("bbq"), quiet({ cacheDir: cache, baseUrl: `${base}/ok` }));
    assert.equal(bbq.files.filter((f) => f.status === "downloaded").length, 6);
    assert.deepEqual(
      bbq.files.filter((f) => f.status === "skipped-unpinned").map((f) => f.path),
      ["bbq/Gender_identity.jsonl", "bbq/Race_ethnicity.jsonl", "bbq/Race_x_SES.jsonl", "bbq/Race_x_gender.jsonl", "bbq/SES.jsonl", "bbq/supplemental/additional_metadata.csv"],
    );
    assert.equal(hits.get("/ok/bbq/SES.jsonl"), undefined, "unpinned files are not requested");
    assert.deepEqual(loadBbq(cache).missing, ["Gender_identity", "Race_ethnicity", "Race_x_SES", "Race_x_gender", "SES"]);

    await rejectsWith(fetchDataset("jailbreak-prompts", quiet({ cacheDir: cache })), "no upstream URL", "--base-url");

    // A stalled body times out (stall timeout, not a total one) and leaves nothing behind.
    await rejectsWith(
      fetchDataset("jbb-behaviors", quiet({ cacheDir: cache, baseUrl: `${base}/hang`, timeoutMs: 200 })),
      "jbb-behaviors/harmful-behaviors.csv",
      "timed out: no data for 200 ms",
    );

    const controller = new AbortController();
    const pending = fetchDataset("jbb-behaviors", quiet({ cacheDir: cache, baseUrl: `${base}/hang`, signal: controller.signal }));
    setTimeout(() => controller.abort(), 150);
    await assert.rejects(pending, (e: unknown) => (e as Error).name === "AbortError");
    assert.ok(!existsSync(join(cache, "jbb-behaviors/harmful-behaviors.csv")));
    assert.ok(allFiles(cache).every((p) => !p.endsWith(".part")));
  } finally {
    rmSync(cache, { recursive: true, force: true });
  }
});

/** The last stdout line of a CLI run, parsed. */
function lastJson<T>(stdout: string): T {
  return JSON.parse(stdout.trim().split("\n").pop()!) as T;
}

/** A CLI run that is expected to fail, with its exit code and output. */
function runFails(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return run(process.execPath, [CLI, ...args]).then(
    () => assert.fail(`expected a non-zero exit: ${args.join(" ")}`),
    (e: { code: number; stdout: string; stderr: string }) => e,
  );
}

interface VerifySummary {
  ok: number;
  mismatch: number;
  missing: number;
}

test("CLI: data fetch --json prints one summary line; a mismatch exits 1; data verify and list on the samples", async () => {
  const cache = tempCache();
  try {
    // jailbreak-prompts is sampled whole, so the real pinned hashes verify it.
    const ok = await run(process.execPath, [CLI, "data", "fetch", "jailbreak-prompts", "--base-url", `${base}/ok`, "--cache-dir", cache, "--json"]);
    const summary = lastJson<{ downloaded: number; failed: number; cacheDir: string }>(ok.stdout);
    assert.equal(summary.downloaded, 2);
    assert.equal(summary.failed, 0);
    assert.equal(summary.cacheDir, cache);
    assert.match(ok.stderr, /downloaded jailbreak-prompts\/autodan_initial_prompt\.json/);

    const bad = await runFails(["data", "fetch", "jailbreak-prompts", "--base-url", `${base}/tamper`, "--cache-dir", tempCache(), "--json"]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /SHA-256 mismatch/);
    assert.equal(lastJson<{ failed: number }>(bad.stdout).failed, 2);

    const unknown = await runFails(["data", "fetch", "mmlu", "--cache-dir", cache]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown dataset 'mmlu'; available: advbench/);

    // Verify the samples against the real pins: what matches, what does not and what is absent,
    // counted here from the files.
    const expected = { ok: 0, mismatch: 0, missing: 0 };
    for (const f of DATASETS.flatMap((d) => d.files)) {
      if (!existsSync(join(SAMPLE_DATA, f.path))) expected.missing++;
      else if (f.sha256 !== null) expected[sampleSha256(f.path) === f.sha256 ? "ok" : "mismatch"]++;
    }
    assert.equal(expected.ok, 2 + 5, "only files sampled whole match their pins: jailbreak-prompts and the five attack-info.json");
    const verify = await runFails(["data", "verify", "--data-dir", SAMPLE_DATA, "--json"]);
    assert.equal(verify.code, 1, "a mismatch exits 1");
    const v = lastJson<VerifySummary>(verify.stdout);
    assert.deepEqual([v.ok, v.mismatch, v.missing], [expected.ok, expected.mismatch, expected.missing]);

    const list = lastJson<{ datasets: { name: string; present: number; files: number }[]; attacks: { name: string }[] }>(
      (await run(process.execPath, [CLI, "data", "list", "--data-dir", SAMPLE_DATA, "--json"])).stdout,
    );
    assert.equal(list.datasets.length, 7);
    assert.deepEqual(list.datasets.find((d) => d.name === "bbq"), { ...list.datasets.find((d) => d.name === "bbq"), present: 6, files: 12 });
    assert.equal(list.attacks.length, 1 + 3 + 1 + 5, "none, 3 GCG suffixes, AutoDAN, one replay per sample artifact file");
  } finally {
    rmSync(cache, { recursive: true, force: true });
  }
});

test("CLI on the full data: data verify checks ../shared/data; data fetch all from a mirror of it", { skip: FULL_DATA_SKIP }, async () => {
  const cache = tempCache();
  try {
    const verify = await run(process.execPath, [CLI, "data", "verify", "--data-dir", FULL_DATA, "--json"]);
    const v = lastJson<VerifySummary>(verify.stdout);
    assert.deepEqual([v.ok, v.mismatch, v.missing], [51, 0, 6]);

    const list = lastJson<{ datasets: { name: string; present: number; files: number }[]; attacks: { name: string }[] }>(
      (await run(process.execPath, [CLI, "data", "list", "--data-dir", FULL_DATA, "--json"])).stdout,
    );
    assert.equal(list.datasets.length, 7);
    assert.deepEqual(list.datasets.find((d) => d.name === "bbq"), { ...list.datasets.find((d) => d.name === "bbq"), present: 6, files: 12 });
    assert.equal(list.attacks.length, 1 + 3 + 1 + 18);

    // Everything from a mirror of ../shared/data: the 51 pinned files; then the cache verifies like the source.
    await run(process.execPath, [CLI, "data", "fetch", "jailbreak-prompts", "--base-url", `${base}/full/ok`, "--cache-dir", cache, "--json"]);
    const all = await run(process.execPath, [CLI, "data", "fetch", "all", "--base-url", `${base}/full/ok`, "--cache-dir", cache, "--json"]);
    const s = lastJson<{ downloaded: number; cached: number; skippedUnpinned: number; failed: number }>(all.stdout);
    assert.deepEqual([s.downloaded + s.cached, s.cached, s.skippedUnpinned, s.failed], [51, 2, 6, 0]);
    const v2 = lastJson<VerifySummary>((await run(process.execPath, [CLI, "data", "verify", "--data-dir", cache, "--json"])).stdout);
    assert.deepEqual([v2.ok, v2.mismatch, v2.missing], [51, 0, 6]);
    assert.ok(statSync(join(cache, "xstest/xstest_prompts.csv")).size > 0);
  } finally {
    rmSync(cache, { recursive: true, force: true });
  }
});
