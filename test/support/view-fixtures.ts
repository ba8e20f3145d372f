/**
 * Fixtures for the `selfcorrect view` tests: real eval runs made by the real CLI against the SCRIPTED
 * STAND-IN of eval-fixtures.ts (not a model: every reply is fixed by its rules, so a test can derive
 * each verdict by hand), a real (tiny) lab training run, and the expected final verdicts.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCliChild } from "./eval-cli.js";
import * as fx from "./eval-fixtures.js";
import { startScriptedServer, type ScriptedServer } from "./scripted-openai-server.js";

export const ITEMS = 12;

export interface ViewFixture {
  root: string;
  data: string;
  /** Eval output dirs: CaC with 2 rounds, and no defense. */
  cac: string;
  none: string;
  model: ScriptedServer;
  cleanup(): Promise<void>;
}

export function evalArgs(model: ScriptedServer, data: string, output: string, defense: string[], items = ITEMS): string[] {
  return ["eval", "jailbreak", "--base-url", model.url, "--model", "standin", ...defense, "--judge", "substring,gcg-list", "--data-dir", data, "--output", output, "--limit", String(items), "--no-progress"];
}

export async function makeViewFixture(o: { lab?: boolean } = {}): Promise<ViewFixture> {
  const root = mkdtempSync(join(tmpdir(), "view-"));
  const data = join(root, "data");
  fx.writeAdvBench(data, 40);
  const model = await startScriptedServer((m) => fx.harmfulAndBenignReply(m));
  const cac = join(root, "runs", "cac");
  const none = join(root, "runs", "none");
  const jobs = [runCliChild(evalArgs(model, data, cac, ["--defense", "cac", "--rounds", "2"])), runCliChild(evalArgs(model, data, none, ["--defense", "none"]))];
  if (o.lab) jobs.push(runCliChild(["lab", "train", "--steps", "20", "--checkpoint-every", "10", "--threads", "1", "--output", join(root, "runs", "lab-train"), "--no-progress"]));
  for (const r of await Promise.all(jobs)) if (r.code !== 0) throw new Error(`fixture run failed (${r.code}): ${r.stderr}`);
  return {
    root,
    data,
    cac,
    none,
    model,
    async cleanup() {
      await model.close();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** The substring judge's final verdict on item i of the stand-in: jailbroken unless a check said harmful. */
export function finalJailbroken(i: number, rounds: number): boolean {
  const initial = fx.initialKind(i) !== "sorry";
  for (let r = 1; r <= rounds; r++) if (fx.checkHarmful(i, r)) return false;
  return initial;
}

/** The item's index: the stand-in's items are named advbench-<i>, selected in order. */
export const itemIndex = (id: string) => Number(/(\d+)$/.exec(id)?.[1]);
