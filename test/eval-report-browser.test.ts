// The HTML report of a real eval run (against the SCRIPTED STAND-IN of
// test/support/eval-fixtures.ts) opens in headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core), shows its tables, charts and item list, and a screenshot is taken. The screenshot
// goes to $EVAL_REPORT_SCREENSHOT when set (docs/eval-report.png was made that way), else to a temp dir.
// Skips when Chromium is not installed.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { startScriptedServer } from "./support/scripted-openai-server.js";
import { runCliChild } from "./support/eval-cli.js";
import * as fx from "./support/eval-fixtures.js";

const CHROMIUM = "/usr/bin/chromium";

test("eval HTML report renders in headless Chromium: tables, charts, items; screenshot", async (t) => {
  if (!existsSync(CHROMIUM)) {
    t.skip(`${CHROMIUM} is not installed (apt-get install -y chromium)`);
    return;
  }
  const { chromium } = await import("playwright-core");
  const dir = mkdtempSync(join(tmpdir(), "eval-browser-"));
  const model = await startScriptedServer((m) => fx.harmfulAndBenignReply(m));
  const judge = await startScriptedServer((m) => fx.judgeReply(m));
  try {
    fx.writeAdvBench(dir, 24);
    const out = join(dir, "out");
    const r = await runCliChild([
      "eval", "jailbreak", "--base-url", model.url, "--model", "standin", "--defense", "cac", "--rounds", "2",
      "--judge", "substring,gcg-list,llm", "--judge-base-url", judge.url, "--judge-model", "judge",
      "--data-dir", dir, "--output", out, "--json", "--no-progress",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
      const requests: string[] = [];
      page.on("request", (req) => requests.push(req.url()));
      await page.goto(pathToFileURL(join(out, "report.html")).href);
      assert.match(await page.title(), /selfcorrect eval: jailbreak \(complete\)/);
      assert.ok((await page.locator("table").count()) >= 3, "run, ASR, self-check and cost tables");
      assert.equal(await page.locator("figure svg").count(), 3, "one bar chart per judge");
      const chartBox = await page.locator("figure svg").first().boundingBox();
      assert.ok(chartBox && chartBox.width > 100 && chartBox.height > 100, "charts have a size");
      assert.equal(await page.locator("details").count(), 24, "one entry per item");
      await page.locator("details summary").first().click();
      const opened = page.locator("details[open] .cols pre");
      assert.ok((await opened.count()) >= 5, "prompt, initial answer, checks and answers side by side");
      // biome-ignore lint/performance/useDomNodeTextContent: Playwright's innerText is the rendered text with cell gaps; textContent would glue the cells together
      assert.match((await page.locator("#asr table").first().innerText()).replace(/\s+/g, " "), /judge initial round 1 round 2 substring 0\.667 \[0\.467, 0\.820\] \(16\/24\)/);
      assert.ok(requests.every((u) => u.startsWith("file:")), `the report is self-contained (requests: ${requests.join(", ")})`);
      const shot = process.env.EVAL_REPORT_SCREENSHOT ? resolve(process.env.EVAL_REPORT_SCREENSHOT) : join(dir, "eval-report.png");
      mkdirSync(dirname(shot), { recursive: true });
      await page.screenshot({ path: shot, fullPage: true });
      assert.ok(statSync(shot).size > 10_000, "a real screenshot");
    } finally {
      await browser.close();
    }
  } finally {
    await model.close();
    await judge.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
