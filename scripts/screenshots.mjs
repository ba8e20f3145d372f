#!/usr/bin/env node
// Screenshots of `selfcorrect view` for the docs (not a test): makes two eval runs with the real CLI
// against the SCRIPTED STAND-IN of the tests (test/support/view-fixtures.ts; its replies are scripted,
// not a model's), serves them (and a lab run directory when given), and saves PNGs of the run list, an
// item trace, a comparison and the lab panels with headless Chromium.
//
//   npm run build && node scripts/screenshots.mjs [--lab runs/lab/quick] [--out docs/screenshots]
//
// The lab page needs a `selfcorrect lab experiment` output directory (default runs/lab/quick when it
// exists); without one the lab screenshot is skipped.
import { existsSync, mkdirSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { chromium } from "playwright-core";
import { makeViewFixture } from "../dist/test/support/view-fixtures.js";
import { startViewServer } from "../dist/src/view/server.js";

const { values } = parseArgs({ options: { lab: { type: "string" }, out: { type: "string", default: "docs/screenshots" } } });
const lab = values.lab ?? (existsSync("runs/lab/quick") ? "runs/lab/quick" : undefined);
const out = resolve(values.out);
mkdirSync(out, { recursive: true });

const f = await makeViewFixture();
const server = await startViewServer({ dirs: [join(f.root, "runs"), ...(lab ? [lab] : [])], port: 0 });
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"] });
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 820 } });
  const api = async (path) => (await fetch(new URL(path, server.url))).json();
  const { runs } = await api("/api/runs");
  const cac = runs.find((r) => r.defense === "cac").id;
  const none = runs.find((r) => r.defense === "none").id;
  const shot = async (name, hash, ready) => {
    await page.goto("about:blank");
    await page.goto(`${server.url}${hash}`);
    await page.locator(ready).first().waitFor();
    await page.waitForTimeout(300);
    const file = join(out, `${name}.png`);
    await page.screenshot({ path: file });
    process.stdout.write(`${file}: ${(statSync(file).size / 1024).toFixed(0)} KB\n`);
  };
  await shot("view-runs", "#/", "tr[data-run]");
  await shot("view-item", `#/run/${cac}/item/advbench-0`, ".turn[data-kind=initial]");
  await shot("view-compare", `#/compare?a=${cac}&b=${none}`, "#differ-count");
  if (lab) {
    const { lab: dirs } = await api("/api/lab");
    const withPanels = dirs.find((d) => d.panels.length) ?? dirs[0];
    if (withPanels) await shot("view-lab", `#/lab/${withPanels.dir}`, ".chart .u-over");
  } else process.stdout.write("no lab directory (--lab DIR): lab screenshot skipped\n");
} finally {
  await browser.close();
  await server.close();
  await f.cleanup();
}
