// The JSON API of `selfcorrect view` over a real HTTP server on 127.0.0.1, on eval runs made by the real
// CLI against the SCRIPTED STAND-IN (test/support/view-fixtures.ts) and a real tiny lab training run:
// runs list, item paging and filters (expected verdicts derived from the stand-in's rules), the item
// trace, compare, the event stream, path traversal, the token and Host checks, and the CLI's refusal to
// bind a non-loopback host without a token.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import http from "node:http";
import { startViewServer, type ViewServer } from "../src/view/server.js";
import { request } from "./support/serve-process.js";
import { runCliChild, startCli } from "./support/eval-cli.js";
import * as fx from "./support/eval-fixtures.js";
import { finalJailbroken, ITEMS, itemIndex, makeViewFixture, type ViewFixture } from "./support/view-fixtures.js";
import { within } from "./support/wait.js";

let f: ViewFixture;
let server: ViewServer;
let playground: string;

before(async () => {
  f = await makeViewFixture({ lab: true });
  playground = join(f.root, "playground");
  mkdirSync(playground);
  writeFileSync(join(playground, "index.html"), "<!doctype html><title>playground</title>");
  // A link out of a served directory: it must not be followed.
  symlinkSync("/etc", join(f.cac, "etc-link"));
  server = await startViewServer({ dirs: [join(f.root, "runs")], port: 0, playgroundRoot: playground });
});

after(async () => {
  await server?.close();
  await f?.cleanup();
});

async function get(path: string, headers: Record<string, string> = {}): Promise<{ status: number; json: any; headers: http.IncomingHttpHeaders; body: string }> {
  const r = await request(server.url, { path, headers });
  let json: any;
  try {
    json = JSON.parse(r.body);
  } catch {
    /* not JSON */
  }
  return { ...r, json };
}

async function runIds(): Promise<{ cac: string; none: string }> {
  const { json } = await get("/api/runs");
  const byDefense = (d: string) => json.runs.find((r: any) => r.defense === d).id as string;
  return { cac: byDefense("cac"), none: byDefense("none") };
}

test("GET /api/runs lists each run with its config, counts and headline metrics", async () => {
  const r = await get("/api/runs");
  assert.equal(r.status, 200);
  assert.equal(r.json.runs.length, 2);
  const cac = r.json.runs.find((x: any) => x.defense === "cac");
  assert.equal(cac.task, "jailbreak");
  assert.equal(cac.rounds, 2);
  assert.equal(cac.status, "complete");
  assert.deepEqual(cac.counts, { selected: ITEMS, done: ITEMS, errors: 0, pending: 0, skippedByAttack: 0 });
  const substring = cac.headline.find((h: any) => h.title === "ASR, judge substring");
  const expectFinal = Array.from({ length: ITEMS }, (_, i) => finalJailbroken(i, 2)).filter(Boolean).length;
  assert.equal(substring.final.k, expectFinal);
  assert.equal(substring.final.n, ITEMS);
  assert.ok(substring.final.low <= substring.final.rate && substring.final.rate <= substring.final.high, "a 95% interval around the rate");
});

test("items are paged, and filtered by verdict, flip, status and search", async () => {
  const { cac } = await runIds();
  const p1 = await get(`/api/runs/${cac}/items?limit=5`);
  const p3 = await get(`/api/runs/${cac}/items?limit=5&offset=10`);
  assert.equal(p1.json.total, ITEMS);
  assert.deepEqual(p1.json.items.map((x: any) => x.index), [0, 1, 2, 3, 4]);
  assert.deepEqual(p3.json.items.map((x: any) => x.index), [10, 11]);

  const flagged = await get(`/api/runs/${cac}/items?verdict=flagged&judge=substring&limit=500`);
  const expected = Array.from({ length: ITEMS }, (_, i) => i).filter((i) => finalJailbroken(i, 2));
  assert.deepEqual(flagged.json.items.map((x: any) => itemIndex(x.id)), expected);

  const flipped = await get(`/api/runs/${cac}/items?flipped=true&judge=substring&limit=500`);
  const expectFlipped = Array.from({ length: ITEMS }, (_, i) => i).filter((i) => (fx.initialKind(i) !== "sorry") !== finalJailbroken(i, 2));
  assert.deepEqual(flipped.json.items.map((x: any) => itemIndex(x.id)), expectFlipped);

  const search = await get(`/api/runs/${cac}/items?q=${encodeURIComponent("behavior 007")}`);
  assert.deepEqual(search.json.items.map((x: any) => x.id), ["advbench-7"]);
  const errors = await get(`/api/runs/${cac}/items?status=error`);
  assert.equal(errors.json.total, 0);
});

test("bad query values get 400 with a message naming the field", async () => {
  const { cac } = await runIds();
  for (const [q, message] of [
    ["limit=0", "limit: must be at least 1"],
    ["limit=501", "limit: must be at most 500"],
    ["limit=abc", "limit: must be a number"],
    ["offset=-1", "offset: must be at least 0"],
    ["verdict=maybe", "verdict: "],
    ["flipped=yes", "flipped: "],
  ] as const) {
    const r = await get(`/api/runs/${cac}/items?${q}`);
    assert.equal(r.status, 400, q);
    assert.ok(r.json.error.startsWith(message), `${q}: ${r.json.error}`);
  }
  const badId = await get("/api/runs/not-a-run");
  assert.equal(badId.status, 400);
  assert.match(badId.json.error, /^id: /);
  assert.equal((await get("/api/runs/0-0000000000000000")).status, 404);
  const cmp = await get(`/api/compare?a=${cac}`);
  assert.equal(cmp.status, 400);
  assert.match(cmp.json.error, /^b: /);
});

test("one item: the CaC trace holds the stored texts and the messages each call was sent", async () => {
  const { cac } = await runIds();
  const r = await get(`/api/runs/${cac}/items/advbench-0`);
  assert.equal(r.status, 200);
  const { record, trace } = r.json;
  assert.equal(r.json.index, 0);
  // Item 0 of the stand-in complies, its checks say harmful, and it then refuses.
  assert.equal(record.answers[0], fx.COMPLY(0));
  assert.equal(record.answers[2], fx.REFUSE);
  assert.equal(trace.source, "stored", "the record carries its conversation");
  assert.deepEqual(trace.turns.map((t: any) => t.content), record.conversation.map((m: any) => m.content));
  const kinds = trace.turns.map((t: any) => t.kind);
  assert.deepEqual(kinds, ["query", "initial", "check-prompt", "check", "reanswer-prompt", "answer", "check-prompt", "check", "reanswer-prompt", "answer"]);
  assert.equal(trace.turns[0].content, record.prompt);
  assert.equal(trace.turns[1].content, record.answers[0]);
  assert.equal(trace.turns[3].content, record.checks[0]);
  assert.equal(trace.turns[9].content, record.answers[2]);
  const check1 = trace.calls.find((c: any) => c.purpose === "check" && c.round === 1);
  assert.equal(check1.sentTurns, 3, "the first check is sent the query, the answer and the check prompt");
  assert.ok(trace.calls.every((c: any) => c.latencyMs >= 0 && c.promptTokens >= 0));
  assert.equal((await get(`/api/runs/${cac}/items/advbench-999`)).status, 404);
});

test("compare: two runs item by item, with the items whose final verdicts differ", async () => {
  const { cac, none } = await runIds();
  const r = await get(`/api/compare?a=${cac}&b=${none}&only=differ&limit=500`);
  assert.equal(r.status, 200);
  const expected = Array.from({ length: ITEMS }, (_, i) => i).filter((i) => finalJailbroken(i, 2) !== finalJailbroken(i, 0));
  assert.equal(r.json.differ, expected.length);
  assert.deepEqual(r.json.rows.map((x: any) => itemIndex(x.id)), expected);
  const all = await get(`/api/compare?a=${cac}&b=${none}&limit=500`);
  assert.equal(all.json.total, ITEMS);
});

test("the event stream sends the run's counts", async () => {
  const { cac } = await runIds();
  const u = new URL(server.url);
  const first = await within(
    new Promise<string>((resolve, reject) => {
      const req = http.get({ host: u.hostname, port: u.port, path: `/api/runs/${cac}/events` }, (res) => {
        assert.equal(res.headers["content-type"], "text/event-stream");
        let buf = "";
        res.on("data", (d) => {
          buf += d;
          if (buf.includes("\n\n")) {
            req.destroy();
            resolve(buf);
          }
        });
      });
      req.on("error", reject);
    }),
    5000,
  );
  assert.ok(first, "an event within 5 s");
  const data = JSON.parse(/data: (.*)/.exec(first!)![1]!);
  assert.deepEqual(data, { done: ITEMS, errors: 0, status: "complete" });
});

test("lab: a training run's loss history from its checkpoint", async () => {
  const lab = await get("/api/lab");
  assert.equal(lab.json.lab.length, 1);
  const dir = lab.json.lab[0].dir;
  const r = await get(`/api/lab/${dir}`);
  assert.equal(r.status, 200);
  const t = r.json.training[0];
  assert.equal(t.status, "finished");
  assert.equal(t.step, 20);
  assert.equal(t.lossHistory.length, 2, "one mean per 10 steps");
  assert.ok(t.lossHistory.every((x: number) => Number.isFinite(x) && x > 0));
  assert.equal((await get("/api/lab/x")).status, 400);
  assert.equal((await get("/api/lab/99")).status, 404);
});

test("path traversal is refused (400/404), encoded or not, and symlinks out are not followed", async () => {
  const ok = await get("/files/0/report.html");
  assert.equal(ok.status, 200, "a served directory's own file is served");
  assert.match(ok.headers["content-security-policy"] as string, /sandbox/);
  const attempts = [
    "/files/0/../../../../etc/passwd",
    "/files/0/..%2f..%2f..%2f..%2fetc%2fpasswd",
    "/files/0/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/files/0/%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "/files/0/%252e%252e/%252e%252e/%252e%252e/%252e%252e/etc/passwd",
    "/files/0/%25252e%25252e%25252fetc%25252fpasswd",
    "/files/0/%2fetc%2fpasswd",
    "/files/0/etc-link/passwd",
    "/files/0/..%5c..%5cetc%5cpasswd",
    "/files/0/%00",
    "/assets/..%2f..%2f..%2fpackage.json",
    "/assets/%252e%252e/%252e%252e/package.json",
    "/playground/..%2f..%2fpackage.json",
    "/playground/%252e%252e/index.html",
    "/api/runs/..%2f..%2fetc%2fpasswd",
    "/api/lab/..%2f..",
  ];
  for (const path of attempts) {
    const r = await get(path);
    assert.ok(r.status === 400 || r.status === 404, `${path}: ${r.status}`);
    assert.doesNotMatch(r.body, /root:|"name": "selfcorrect"|<title>playground/, path);
  }
});

test("the playground is served cross-origin isolated", async () => {
  const r = await get("/playground/");
  assert.equal(r.status, 200);
  assert.equal(r.headers["cross-origin-opener-policy"], "same-origin");
  assert.equal(r.headers["cross-origin-embedder-policy"], "require-corp");
});

test("a Host header that is not loopback is refused on a loopback bind", async () => {
  const r = await get("/api/runs", { host: "attacker.example:80" });
  assert.equal(r.status, 403);
});

test("with a token, every page and API call needs it (header, query or the cookie it sets)", async () => {
  const token = "s3cret-token-for-tests";
  const s = await startViewServer({ dirs: [f.cac], port: 0, token });
  try {
    const at = (path: string, headers: Record<string, string> = {}) => request(s.url, { path, headers });
    assert.equal((await at("/api/runs")).status, 401);
    assert.equal((await at("/")).status, 401);
    assert.equal((await at("/files/0/report.html")).status, 401);
    assert.equal((await at("/api/runs", { authorization: "Bearer wrong-token-x" })).status, 401);
    assert.equal((await at("/api/runs", { authorization: `Bearer ${token}` })).status, 200);
    const q = await at(`/api/runs?token=${token}`);
    assert.equal(q.status, 200);
    const cookie = String(q.headers["set-cookie"]).split(";")[0]!;
    assert.match(String(q.headers["set-cookie"]), /HttpOnly/);
    assert.equal((await at("/api/runs", { cookie })).status, 200);
  } finally {
    await s.close();
  }
});

test("CLI: a non-loopback --host without --token is refused at start (exit 2)", async () => {
  const r = await runCliChild(["view", f.cac, "--host", "0.0.0.0", "--port", "0"], 20_000, { SELFCORRECT_VIEW_TOKEN: "" });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /--host 0\.0\.0\.0 .*--token/);
});

test("CLI: `selfcorrect view DIR --port 0 --json` serves the run", async () => {
  const { child, done } = startCli(["view", f.cac, "--port", "0", "--json"]);
  try {
    const line = await within(
      new Promise<string>((resolve) => {
        let out = "";
        child.stdout!.on("data", (d) => {
          out += d;
          if (out.includes("\n")) resolve(out.split("\n")[0]!);
        });
      }),
      15_000,
    );
    assert.ok(line, "a JSON line on stdout");
    const info = JSON.parse(line!);
    assert.match(info.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    const r = await request(info.url, { path: "/api/runs" });
    const runs = JSON.parse(r.body).runs;
    assert.equal(runs.length, 1);
    assert.equal(runs[0].counts.done, ITEMS);
  } finally {
    child.kill("SIGTERM");
    const end = await within(done, 10_000);
    assert.ok(end, "the server stops on SIGTERM");
    assert.match(end!.stderr, /selfcorrect view: http:\/\/127\.0\.0\.1:\d+\//);
  }
});
