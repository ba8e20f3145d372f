// The `selfcorrect view` front end in headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core) over eval runs made by the real CLI against the SCRIPTED STAND-IN
// (test/support/view-fixtures.ts): the run list, filtering, an item's trace (texts exactly as stored),
// the side-by-side diff, and a run page whose item count grows live while `selfcorrect eval` writes.
// Skips only when Chromium is absent and CI is unset; under CI a missing browser fails.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { ResultStore, STORE_FILE } from "../src/eval/store.js";
import { startViewServer, type ViewServer } from "../src/view/server.js";
import { startCli } from "./support/eval-cli.js";
import * as fx from "./support/eval-fixtures.js";
import { startScriptedServer } from "./support/scripted-openai-server.js";
import { evalArgs, finalJailbroken, ITEMS, makeViewFixture, type ViewFixture } from "./support/view-fixtures.js";
import { waitFor, within } from "./support/wait.js";
import { sleep } from "../src/util/sleep.js";

const CHROMIUM = "/usr/bin/chromium";
const skip = !existsSync(CHROMIUM) && !process.env.CI ? `${CHROMIUM} is not installed (apt-get install -y chromium)` : false;

let f: ViewFixture;
let server: ViewServer;
let browser: Browser;
let page: Page;
const t0 = Date.now();

before(async () => {
  if (skip) return;
  f = await makeViewFixture();
  server = await startViewServer({ dirs: [join(f.root, "runs")], port: 0, pollMs: 250 });
  const { chromium } = await import("playwright-core");
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
});

after(async () => {
  await browser?.close();
  await server?.close();
  await f?.cleanup();
  process.stderr.write(`view browser tests: ${((Date.now() - t0) / 1000).toFixed(1)} s in all\n`);
});

/** A fresh document at the route, so no page state carries over from the test before. */
async function open(hash = ""): Promise<void> {
  await page.goto("about:blank");
  await page.goto(`${server.url}${hash}`);
}

/** Polls the run page's item count (the page's CSP rules out Playwright's waitForFunction). */
async function untilCount(ok: (n: number) => boolean, timeoutMs = 60_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const n = Number(await page.locator("#done-count").textContent());
    if (ok(n)) return;
    if (Date.now() > until) throw new Error(`the item count stayed at ${n}`);
    await sleep(100);
  }
}

async function runIdOf(defense: string): Promise<string> {
  const res = await fetch(new URL("/api/runs", server.url));
  const { runs } = (await res.json()) as { runs: { id: string; defense: string }[] };
  return runs.find((r) => r.defense === defense)!.id;
}

test("the run list shows every run with its headline metric", { skip }, async () => {
  await open();
  await page.locator("tr[data-run]").nth(1).waitFor();
  assert.equal(await page.locator("tr[data-run]").count(), 2);
  const text = await page.locator("table.runs").textContent();
  assert.match(text ?? "", /cac R=2/);
  assert.match(text ?? "", /ASR, judge substring/);
  assert.equal(await page.locator("nav a[href='/playground/']").count(), 1, "the nav links the playground");
});

test("filtering the items by final verdict and by flip", { skip }, async () => {
  const id = await runIdOf("cac");
  await open(`#/run/${id}`);
  await page.locator("#items-total").waitFor();
  assert.equal(await page.locator("table.items tbody tr").count(), ITEMS);
  await page.selectOption("select[name=judge]", "substring");
  await page.selectOption("select[name=verdict]", "flagged");
  const flagged = Array.from({ length: ITEMS }, (_, i) => i).filter((i) => finalJailbroken(i, 2));
  await page.locator("#items-total", { hasText: `${flagged.length} matching items` }).waitFor();
  assert.deepEqual(await page.locator("table.items tbody tr").evaluateAll((rows) => rows.map((r) => r.getAttribute("data-item"))), flagged.map((i) => `advbench-${i}`));
  await page.selectOption("select[name=verdict]", "");
  await page.selectOption("select[name=flipped]", "true");
  const flipped = Array.from({ length: ITEMS }, (_, i) => i).filter((i) => (fx.initialKind(i) !== "sorry") !== finalJailbroken(i, 2));
  await page.locator("#items-total", { hasText: `${flipped.length} matching items` }).waitFor();
  await page.fill("input[name=q]", "Behavior 006");
  await page.locator("#items-total", { hasText: "1 matching items" }).waitFor();
  assert.equal(await page.locator("table.items tbody tr").getAttribute("data-item"), "advbench-6");
});

test("item 0's trace shows the initial answer, the check and the final answer exactly as stored", { skip }, async () => {
  const id = await runIdOf("cac");
  const store = new ResultStore(join(f.cac, STORE_FILE));
  const stored = store.results(id.split("-")[1]!).get("advbench-0");
  store.close();
  assert.ok(stored?.status === "done");
  const rec = stored.record;
  await open(`#/run/${id}`);
  await page.locator("table.items a", { hasText: "advbench-0" }).click();
  await page.locator(".turn[data-kind=initial] pre").waitFor();
  assert.equal(await page.locator(".turn[data-kind=query] pre").textContent(), rec.prompt);
  assert.equal(await page.locator(".turn[data-kind=initial] pre").textContent(), rec.answers[0]);
  assert.equal(await page.locator(".turn[data-kind=check][data-round='1'] pre").textContent(), rec.checks[0]);
  assert.equal(await page.locator(".turn[data-kind=answer][data-round='2'] pre").textContent(), rec.answers[2]);
  assert.equal(rec.answers[0], fx.COMPLY(0), "the stand-in's scripted initial answer");
  assert.match((await page.locator(".turn[data-kind=answer][data-round='2'] .who").textContent()) ?? "", /final answer/);
  assert.ok((await page.locator("table.calls tbody tr").count()) >= 5, "initial, 2 checks, 2 answers");
  await page.locator("table.calls details summary").nth(1).click();
  assert.match((await page.locator("table.calls details[open] pre").textContent()) ?? "", /"role": "assistant"/);
});

test("two runs side by side: the items whose final verdicts differ are marked", { skip }, async () => {
  const [a, b] = [await runIdOf("cac"), await runIdOf("none")];
  await open();
  await page.locator(`tr[data-run='${a}'] input[type=checkbox]`).check();
  await page.locator(`tr[data-run='${b}'] input[type=checkbox]`).check();
  await page.locator("#compare-picked").click();
  await page.locator("#differ-count").waitFor();
  const expected = Array.from({ length: ITEMS }, (_, i) => i).filter((i) => finalJailbroken(i, 2) !== finalJailbroken(i, 0));
  assert.equal(await page.locator("#differ-count").textContent(), String(expected.length));
  assert.equal(await page.locator("table.compare tr.differ").count(), expected.length);
  await page.locator("input[name=only-differ]").check();
  // The unfiltered table already has that many rows: wait for the filter itself to drop the others.
  const rows = page.locator("table.compare tbody tr");
  await waitFor(async () => (await rows.count()) <= expected.length, 5000, { what: "the only-differ filter" });
  assert.equal(await rows.count(), expected.length);
});

test("a run in progress: the open run page's item count grows without a reload", { skip }, async () => {
  // Each stand-in reply waits, so the 12 items (5 calls each) take a few seconds to finish one by one.
  const slow = await startScriptedServer((m) => ({ text: fx.harmfulAndBenignReply(m) as string, delayMs: 150 }));
  const out = join(f.root, "runs", "live");
  const ev = startCli([...evalArgs(slow, f.data, out, ["--defense", "cac", "--rounds", "2"]), "--concurrency", "1"]);
  try {
    const id = await waitFor(async () => {
      const res = await fetch(new URL("/api/runs", server.url));
      const { runs } = (await res.json()) as { runs: { id: string; dirLabel: string; counts: { done: number } }[] };
      return runs.find((r) => r.dirLabel.endsWith("live"))?.id;
    }, 30_000, { what: "the new run to show up in /api/runs", everyMs: 100 });
    await open(`#/run/${id}`);
    await page.locator("#done-count").waitFor();
    const first = Number(await page.locator("#done-count").textContent());
    assert.ok(first < ITEMS, `the page opened before the run finished (${first} done)`);
    (await page.evaluateHandle(() => ((globalThis as { marker?: number }).marker = 42))).dispose();
    await untilCount((n) => n > first);
    await untilCount((n) => n === ITEMS);
    assert.equal(await page.evaluate(() => (globalThis as { marker?: number }).marker), 42, "same document: no reload");
    const end = await within(ev.done, 30_000);
    assert.equal(end?.code, 0, end?.stderr);
  } finally {
    ev.child.kill("SIGKILL");
    await slow.close();
  }
});
