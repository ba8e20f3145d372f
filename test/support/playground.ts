/**
 * Driving the training playground (web/playground, built by Vite into one self-contained index.html)
 * in Debian's headless Chromium through playwright-core: build it, open it, train, read what the page
 * shows, download the checkpoint. Shared by test/playground-browser.test.ts and bench/playground.ts.
 */
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { Browser, Page } from "playwright-core";

export const CHROMIUM = "/usr/bin/chromium";
const ROOT = resolve(fileURLToPath(new URL("../../..", import.meta.url)));

/** Builds the page with the project's Vite config into `outDir`; returns the path of its index.html. */
export async function buildPlayground(outDir: string): Promise<string> {
  const { build } = await import("vite");
  await build({ configFile: join(ROOT, "web/playground/vite.config.ts"), logLevel: "error", build: { outDir, emptyOutDir: true } });
  const index = join(outDir, "index.html");
  if (!existsSync(index)) throw new Error(`the Vite build wrote no ${index}`);
  return index;
}

export async function launchChromium(): Promise<Browser> {
  const { chromium } = await import("playwright-core");
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

/** The page's form fields, preset through the query string (see formFromQuery in web/playground/src/main.tsx). */
export interface PlaygroundSettings {
  layers: number;
  heads: number;
  width: number;
  batch: number;
  lr: number;
  steps: number;
  evalEvery: number;
  p?: number;
  seed?: number;
}

/** Opens the page (a file:// path or an http:// URL) with the settings, collecting page errors. */
export async function openPlayground(browser: Browser, where: string, s: PlaygroundSettings): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  const query = new URLSearchParams(Object.entries(s).map(([k, v]): [string, string] => [k, String(v)])).toString();
  const base = where.startsWith("http") ? where : pathToFileURL(where).href;
  await page.goto(`${base}?${query}`);
  return { page, errors };
}

/** Waits until the page's phase is one of `phases` (or "error", which throws with the page's message). */
export async function waitForPhase(page: Page, phases: string[], timeoutMs: number): Promise<string> {
  const sel = [...phases, "error"].map((p) => `#phase[data-phase="${p}"]`).join(", ");
  await page.waitForSelector(sel, { timeout: timeoutMs });
  const phase = (await page.locator("#phase").getAttribute("data-phase")) ?? "";
  if (phase === "error") throw new Error(`the playground failed: ${await page.locator("#error").textContent()}`);
  return phase;
}

/** The per-step losses the page shows in its "Loss per step" log, in step order. */
export async function displayedLosses(page: Page): Promise<{ step: number; loss: number }[]> {
  const text = (await page.locator("#loss-log pre").textContent()) ?? "";
  return text
    .split("\n")
    .filter((l) => l.trim())
    .map((l) => {
      const [step, loss] = l.trim().split(" ");
      return { step: Number(step), loss: Number(loss) };
    });
}

/** Clicks both checkpoint links and saves them as `<dir>/<name>` and `<dir>/<name>.json`; returns the first path. */
export async function downloadCheckpoint(page: Page, dir: string, name = "playground.safetensors"): Promise<string> {
  const links = page.locator("#downloads a");
  await links.nth(1).waitFor({ timeout: 10_000 });
  const path = join(dir, name);
  for (const [i, target] of [path, `${path}.json`].entries()) {
    const [download] = await Promise.all([page.waitForEvent("download"), links.nth(i).click()]);
    await download.saveAs(target);
  }
  return path;
}

/** The ms/step the page shows (the worker's time per training step over its last ~100 ms). */
export async function displayedMsPerStep(page: Page): Promise<number> {
  const text = (await page.locator("#ms-per-step").textContent()) ?? "";
  return Number.parseFloat(text);
}
