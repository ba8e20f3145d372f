/**
 * The synthetic world's held-out sets (src/world, docs/world.md) as eval items: nothing is read from
 * disk, the items are a pure function of the world seed. The jailbreak set is the held-out harmful
 * requests; the over-refusal set is the held-out benign look-alikes (`safe`), with the harmful requests
 * as the contrast prompts that should be refused (`unsafe`), as XSTest pairs them.
 */
import { heldOutSets, type WorldRequest, type WorldSplit } from "../../world/index.js";
import type { BenignPrompt, JailbreakBehavior } from "./types.js";

export const WORLD_DATASET = "world";

function behavior(r: WorldRequest, index: number): JailbreakBehavior {
  return { id: r.id, source: "world", goal: r.text, behavior: r.kind, index };
}

export function loadWorldHarmful(seed: number, split: WorldSplit = "test"): JailbreakBehavior[] {
  return heldOutSets(seed, split).harmful.map(behavior);
}

export function loadWorldBenign(seed: number, split: WorldSplit = "test"): BenignPrompt[] {
  const h = heldOutSets(seed, split);
  const prompt = (r: WorldRequest, label: "safe" | "unsafe"): BenignPrompt => ({ id: r.id, source: "world", prompt: r.text, label, type: r.kind });
  return [...h.benignLookalikes.map((r) => prompt(r, "safe")), ...h.harmful.map((r) => prompt(r, "unsafe"))];
}
